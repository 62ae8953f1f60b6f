"""engine.status: the daemon's snapshot joined with the state DB, with or without a daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from guardian.engine.status import STATUS_NAME, status
from guardian.store.records import Decision, RunResult
from guardian.store.state import StateStore


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _snapshot(home: Path, state: str, pid: int, repo: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    decision = {"at": 1000.0, "run": False, "why": "nothing changed"}
    doc = {
        "state": state,
        "pid": pid,
        "started_at": 900.0,
        "updated_at": 1001.0,
        "config": None,
        "watch_mode": "poll",
        "repos": [
            {"path": str(repo), "playbook": "quick", "branch": None, "last_decision": decision}
        ],
        "workers": [],
        "schedules": {"nightly": "2030-01-01T03:00:00+00:00"},
        "torch_loaded": False,
    }
    (home / STATUS_NAME).write_text(json.dumps(doc))


def test_status_without_a_daemon_shows_the_queue_steps_and_last_runs(
    tmp_path: Path, guardian_home: Path
) -> None:
    done_repo, busy_repo = tmp_path / "done", tmp_path / "busy"
    with StateStore(guardian_home) as store:
        done_id = store.db.ensure_repo(done_repo, "done")
        busy_id = store.db.ensure_repo(busy_repo, "busy")
        finished = store.runs.start(done_id, "quick", "c0ffee")
        step = store.runs.start_step(finished, 0, "mine", "mine", "a" * 64)
        store.runs.finish_step(step, "ran", 1.0)
        store.runs.finish(
            finished, RunResult(status="succeeded", gate=Decision(passed=True, reasons=[]))
        )
        job_id, _ = store.jobs.enqueue(done_id, "quick", "hook:post-commit")
        older = store.runs.start(busy_id, "deep", "0ld")
        store.runs.finish(older, RunResult(status="failed", error="boom"))
        busy = store.runs.start(busy_id, "deep", "beef")
        mined = store.runs.start_step(busy, 0, "mine", "mine", "b" * 64)
        store.runs.finish_step(mined, "cached", 0.1)
        running_step = store.runs.start_step(busy, 1, "train-lora", "train", "c" * 64)

    found = status(guardian_home)

    assert (found.state, found.running, found.pid) == ("stopped", False, None)
    assert found.repos == [] and found.workers == []
    assert [(j.id, j.status, j.playbook) for j in found.queue] == [(job_id, "queued", "quick")]
    assert found.queue[0].payload.reasons[0].endswith(" hook:post-commit")
    by_repo = {r.repo_path: r for r in found.last_runs}
    assert set(by_repo) == {str(done_repo.resolve()), str(busy_repo.resolve())}
    done = by_repo[str(done_repo.resolve())]
    assert (done.id, done.status, done.decision) == (finished, "succeeded", "pass")
    assert by_repo[str(busy_repo.resolve())].id == busy
    assert [(s.id, s.run_id, s.skill) for s in found.steps] == [(running_step, busy, "train-lora")]


def test_status_of_an_empty_state_dir_creates_nothing(guardian_home: Path) -> None:
    found = status(guardian_home)
    assert (found.state, found.running) == ("stopped", False)
    assert found.queue == [] and found.steps == [] and found.last_runs == []
    assert not guardian_home.exists()


def test_a_live_daemons_snapshot_is_shown_and_a_dead_ones_says_stopped(
    tmp_path: Path, guardian_home: Path
) -> None:
    repo = tmp_path / "repo"
    _snapshot(guardian_home, "running", os.getpid(), repo)
    live = status(guardian_home)
    assert (live.state, live.running, live.pid) == ("running", True, os.getpid())
    assert live.watch_mode == "poll"
    assert live.schedules == {"nightly": "2030-01-01T03:00:00+00:00"}
    (watched,) = live.repos
    assert (watched.path, watched.playbook) == (str(repo), "quick")
    assert watched.last_decision is not None
    assert (watched.last_decision.run, watched.last_decision.why) == (False, "nothing changed")

    dead = _dead_pid()
    _snapshot(guardian_home, "running", dead, repo)
    gone = status(guardian_home)
    assert (gone.state, gone.running, gone.pid) == ("stopped", False, dead)
    assert [r.path for r in gone.repos] == [str(repo)]

    (guardian_home / STATUS_NAME).write_text('{"state": "running", "pid": ')
    torn = status(guardian_home)
    assert (torn.state, torn.running, torn.pid) == ("stopped", False, None)
