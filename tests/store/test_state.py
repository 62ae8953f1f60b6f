from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
from pathlib import Path

import pytest

from guardian.errors import StateError
from guardian.store.migrations import MIGRATIONS
from guardian.store.records import Decision, GateInputs, RunResult, RunStatus
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
        assert s.runs.steps(run_id)[0].metrics == {"chunks": 3}
        # A run whose process died stays 'running' until the next start marks it.
        s.db.conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run_id,))
        assert s.runs.mark_stale() == 1
        stale = s.runs.get(run_id)
        assert stale is not None and stale.status == "interrupted"
        run2 = s.runs.start(repo_id, "retrain", "def")
        assert s.runs.mark_stale() == 0  # our own pid is alive
        gate = Decision(passed=True, reasons=["PASS margin"], baseline_kind="base")
        s.runs.finish(
            run2,
            RunResult(
                status=RunStatus.SUCCEEDED,
                gate=gate,
                gate_inputs=GateInputs(baseline={"perplexity": 9.0}, train_samples=40),
                evaluation={"challenger": {"perplexity": 7.5}},
                note="gate passed",
                warnings=["w1"],
            ),
        )
        last = s.runs.last(repo_id)
        assert last is not None and last.commit_sha == "def" and last.decision == "pass"
        assert last.gate == gate and last.warnings == ["w1"]
        assert last.gate_inputs is not None
        assert last.gate_inputs.baseline == {"perplexity": 9.0}
        assert last.gate_inputs.train_samples == 40
        assert last.evaluation == {"challenger": {"perplexity": 7.5}}


def test_champion_history(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        repo_id = s.db.ensure_repo(tmp_path, "demo")
        assert s.registry.champion(repo_id, "train") is None
        s.registry.promote(repo_id, "train", "r1", "k1", tmp_path / "m1", "base", {"perplexity": 5})
        s.registry.promote(repo_id, "train", "r2", "k2", tmp_path / "m2", "base", {"perplexity": 4})
        s.registry.promote(repo_id, "train", "r3", "k3", tmp_path / "m3", "base", {"perplexity": 3})
        champ = s.registry.champion(repo_id, "train")
        assert champ is not None and champ.run_id == "r3" and champ.metrics["perplexity"] == 3
        statuses = [m.status for m in s.registry.models(repo_id)]
        assert statuses == ["champion", "previous", "retired"]


# every migration a fresh state dir gets, in order (written out: a renamed or dropped
# migration must fail these tests, not follow MIGRATIONS silently)
APPLIED = [
    "0001_foundation",
    "0002_jobs",
    "0003_model_digest",
    "0004_model_override",
    "0005_model_placement",
    "0006_job_queue",
    "0007_run_result",
]


def test_migrations_are_recorded_by_name(tmp_path: Path) -> None:
    with StateStore(tmp_path) as s:
        names = [r[0] for r in s.db.conn.execute("SELECT name FROM migrations ORDER BY rowid")]
    assert names == APPLIED
    assert names == [m.name for m in MIGRATIONS]


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state-v2" / "guardian.db"


def test_state_dir_from_before_named_migrations_upgrades_in_place(tmp_path: Path) -> None:
    # guardian.db written by the flat-layout guardian (user_version 2, no migrations table)
    # after one `make demo`: its champion must still be found.
    shutil.copy(FIXTURE, tmp_path / "guardian.db")
    before = sqlite3.connect(tmp_path / "guardian.db")
    assert before.execute("PRAGMA user_version").fetchone()[0] == 2
    assert not before.execute("SELECT 1 FROM sqlite_master WHERE name='migrations'").fetchall()
    before.close()
    with StateStore(tmp_path) as s:
        names = [r[0] for r in s.db.conn.execute("SELECT name FROM migrations ORDER BY rowid")]
        # the two it had are adopted by name, the newer one is applied in place
        assert names == APPLIED
        assert s.db.schema_version == len(APPLIED)
        repo_id = s.db.conn.execute("SELECT id FROM repos WHERE name = 'demo-repo'").fetchone()[0]
        champ = s.registry.champion(repo_id, "train-lora")
        assert champ is not None and champ.run_id == "20261201T090014Z-d1a353"
        assert champ.metrics["perplexity"] == pytest.approx(6.773, abs=1e-3)
        assert s.runs.last(repo_id) is not None
        assert champ.digest is None  # recorded before digests were


def _open(home: str) -> None:
    StateStore(Path(home)).close()


def test_concurrent_first_opens_of_a_fresh_state_dir_do_not_race(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(3):
        home = tmp_path / f"home{attempt}"
        procs = [ctx.Process(target=_open, args=(str(home),)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
        with StateStore(home) as s:
            names = [r[0] for r in s.db.conn.execute("SELECT name FROM migrations")]
        assert sorted(names) == APPLIED


FIXTURE_V6 = Path(__file__).resolve().parents[1] / "fixtures" / "state-v6"


def test_state_dir_from_before_run_results_upgrades_in_place(tmp_path: Path) -> None:
    # guardian.db + reports/ written by guardian at migration 0006 (one tiny-model run that
    # passed and was promoted), when the gate outcome lived only in report.json.
    import json

    from guardian.engine.report import report_of

    home = tmp_path / "moved-home"  # the state dir moved since: reports are found in it
    shutil.copytree(FIXTURE_V6, home)
    (report_file,) = (home / "reports").glob("*/report.json")
    old = json.loads(report_file.read_text())
    with StateStore(home) as s:
        assert s.db.schema_version == len(APPLIED)
        run = s.runs.require(old["run_id"])
        assert run.status == "succeeded" and run.decision == "pass"
        gate = run.gate
        assert gate is not None and gate.passed and gate.reasons == old["decision"]["reasons"]
        assert len(gate.checks) == len(old["decision"]["checks"]) > 0
        used = run.gate_inputs
        assert used is not None and used.baseline_kind == "base"
        assert used.train_samples == old["gate_inputs"]["train_samples"]
        assert run.evaluation is not None
        assert run.evaluation["challenger"] == old["challenger"]
        assert run.promoted_path == old["promoted_path"] and run.note == old["note"]
        report_file.unlink()  # from now on the report is rendered from the state alone
        rep = report_of(s, run.id)
        assert rep["decision"] == old["decision"] and rep["challenger"] == old["challenger"]
        assert rep["gate_inputs"] == old["gate_inputs"]
        repo_id = run.repo_id
        champ = s.registry.champion(repo_id, "train-lora")
        assert champ is not None and champ.run_id == run.id
