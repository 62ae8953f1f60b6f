"""`guardian status`: the same keys in --json as before the record, and the lines it prints."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from guardian.cli import app
from guardian.store.records import RunResult
from guardian.store.state import StateStore

KEYS = {
    # the daemon's snapshot (daemon.json) ...
    "state", "pid", "started_at", "updated_at", "config", "watch_mode", "repos", "workers",
    "schedules", "torch_loaded",
    # ... joined with the state DB
    "running", "queue", "steps", "last_runs",
}  # fmt: skip


def test_status_json_and_text_without_a_daemon(tmp_path: Path, guardian_home: Path) -> None:
    repo = tmp_path / "inventory"
    with StateStore(guardian_home) as store:
        repo_id = store.db.ensure_repo(repo, "inventory")
        run_id = store.runs.start(repo_id, "quick", "c0ffee")
        store.runs.finish(run_id, RunResult(status="failed", error="disk full"))
        job_id, _ = store.jobs.enqueue(repo_id, "quick", "cli")
        store.jobs.enqueue(repo_id, "quick", "hook:post-merge")

    shown = CliRunner().invoke(app, ["status", "--json"])
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert set(doc) == KEYS
    assert (doc["state"], doc["running"], doc["pid"]) == ("stopped", False, None)
    assert [j["id"] for j in doc["queue"]] == [job_id]
    assert [(r["id"], r["error"]) for r in doc["last_runs"]] == [(run_id, "disk full")]

    text = CliRunner().invoke(app, ["status"])
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == f"daemon: stopped  state dir {guardian_home}"
    assert lines[1:] == [
        "queue: 1 job(s)",
        f"  {job_id} queued  run     inventory [quick] x2 (hook:post-merge)",
        f"last run {run_id} inventory: failed  (disk full)",
    ]
