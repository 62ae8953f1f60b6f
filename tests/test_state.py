from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from guardian.errors import StateError
from guardian.state import MIGRATIONS, StateStore


def test_migrations_apply_once_and_are_numbered(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        assert s.schema_version == len(MIGRATIONS)
        tables = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"repos", "runs", "steps", "artifacts", "models", "jobs"} <= tables
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with StateStore(tmp_path) as s:  # reopening does not re-run migrations
        assert s.schema_version == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "guardian.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StateError, match="newer than this guardian"):
        StateStore(tmp_path)


def test_runs_steps_and_stale_runs(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        repo_id = s.ensure_repo(tmp_path, "demo")
        assert s.ensure_repo(tmp_path, "demo") == repo_id
        run_id = s.start_run(repo_id, "retrain", "abc")
        step = s.start_step(run_id, 0, "mine", "mine", "k" * 64)
        s.finish_step(step, "ran", 1.5, {"chunks": 3})
        assert s.run_steps(run_id)[0]["metrics"] == {"chunks": 3}
        # A run whose process died stays 'running' until the next start marks it.
        s.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run_id,))
        assert s.mark_stale_runs() == 1
        assert s.get_run(run_id)["status"] == "interrupted"
        run2 = s.start_run(repo_id, "retrain", "def")
        assert s.mark_stale_runs() == 0  # our own pid is alive
        s.finish_run(run2, "succeeded", "pass")
        last = s.last_run(repo_id)
        assert last is not None and last["commit_sha"] == "def"


def test_champion_history(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        repo_id = s.ensure_repo(tmp_path, "demo")
        assert s.champion(repo_id, "train") is None
        s.promote_model(repo_id, "train", "r1", "k1", tmp_path / "m1", "base", {"perplexity": 5})
        s.promote_model(repo_id, "train", "r2", "k2", tmp_path / "m2", "base", {"perplexity": 4})
        s.promote_model(repo_id, "train", "r3", "k3", tmp_path / "m3", "base", {"perplexity": 3})
        champ = s.champion(repo_id, "train")
        assert champ is not None and champ["run_id"] == "r3" and champ["metrics"]["perplexity"] == 3
        statuses = [m["status"] for m in s.models(repo_id)]
        assert statuses == ["champion", "previous", "retired"]
