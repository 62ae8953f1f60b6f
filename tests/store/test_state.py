from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from guardian.errors import StateError
from guardian.store.migrations import MIGRATIONS
from guardian.store.state import StateStore


def test_migrations_apply_once_and_are_numbered(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        assert s.db.schema_version == len(MIGRATIONS)
        tables = {
            r[0] for r in s.db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"repos", "runs", "steps", "artifacts", "models", "jobs"} <= tables
        assert s.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with StateStore(tmp_path) as s:  # reopening does not re-run migrations
        assert s.db.schema_version == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "guardian.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer than this guardian"):
        StateStore(tmp_path)


def test_runs_steps_and_stale_runs(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        repo_id = s.db.ensure_repo(tmp_path, "demo")
        assert s.db.ensure_repo(tmp_path, "demo") == repo_id
        run_id = s.runs.start(repo_id, "retrain", "abc")
        step = s.runs.start_step(run_id, 0, "mine", "mine", "k" * 64)
        s.runs.finish_step(step, "ran", 1.5, {"chunks": 3})
        assert s.runs.steps(run_id)[0]["metrics"] == {"chunks": 3}
        # A run whose process died stays 'running' until the next start marks it.
        s.db.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run_id,))
        assert s.runs.mark_stale() == 1
        assert s.runs.get(run_id)["status"] == "interrupted"
        run2 = s.runs.start(repo_id, "retrain", "def")
        assert s.runs.mark_stale() == 0  # our own pid is alive
        s.runs.finish(run2, "succeeded", "pass")
        last = s.runs.last(repo_id)
        assert last is not None and last["commit_sha"] == "def"


def test_champion_history(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        repo_id = s.db.ensure_repo(tmp_path, "demo")
        assert s.registry.champion(repo_id, "train") is None
        s.registry.promote(repo_id, "train", "r1", "k1", tmp_path / "m1", "base", {"perplexity": 5})
        s.registry.promote(repo_id, "train", "r2", "k2", tmp_path / "m2", "base", {"perplexity": 4})
        s.registry.promote(repo_id, "train", "r3", "k3", tmp_path / "m3", "base", {"perplexity": 3})
        champ = s.registry.champion(repo_id, "train")
        assert champ is not None and champ["run_id"] == "r3" and champ["metrics"]["perplexity"] == 3
        statuses = [m["status"] for m in s.registry.models(repo_id)]
        assert statuses == ["champion", "previous", "retired"]
