"""What `guardian status` shows: the daemon's own snapshot (`<home>/daemon.json`, rewritten
every loop turn) joined with the queue, the running steps and the last runs from the state."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from guardian.core.fsutil import atomic_write_text, pid_alive
from guardian.store.state import StateStore

STATUS_NAME = "daemon.json"


def snapshot(daemon: Any) -> dict[str, Any]:
    """The running daemon's state as a JSON-able dict."""
    config = daemon.config
    repos = []
    for r in config.repos:
        path = str(config.repo_path(r))
        repos.append(
            {
                "path": path,
                "playbook": r.playbook,
                "branch": r.branch,
                "last_decision": daemon.decisions.get(path),
            }
        )
    return {
        "state": str(daemon.state),
        "pid": os.getpid(),
        "started_at": daemon._started,
        "updated_at": time.time(),
        "config": str(config.source) if config.source else None,
        "watch_mode": daemon.watcher.mode if daemon.watcher else None,
        "repos": repos,
        "workers": [
            {
                "job": w.job_id,
                "kind": w.job["kind"],
                "repo": w.job.get("repo_path"),
                "pid": w.proc.pid,
                "since": w.started,
            }
            for w in daemon.workers.values()
        ],
        "schedules": daemon.cron.next_runs() if daemon.cron else {},
        "torch_loaded": "torch" in sys.modules,
    }


def write_status(home: Path, doc: dict[str, Any]) -> None:
    """Replace the snapshot file atomically (readers never see half of it)."""
    atomic_write_text(home / STATUS_NAME, json.dumps(doc, indent=2, default=str))


def read_status(home: Path) -> dict[str, Any]:
    """The daemon snapshot joined with the state: queue, running steps, last run per repo.

    `running` is False when no live daemon wrote the snapshot (its pid is gone).
    """
    path = home / STATUS_NAME
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {"state": "stopped", "pid": None}
    doc["running"] = doc.get("state") != "stopped" and pid_alive(doc.get("pid"))
    if not doc["running"]:
        doc["state"] = "stopped"
    if not (home / "guardian.db").exists():
        doc.update(queue=[], steps=[], last_runs=[])
        return doc
    with StateStore(home) as store:
        doc["queue"] = store.jobs.listed(("queued", "running"))
        doc["steps"] = _running_steps(store)
        doc["last_runs"] = _last_runs(store)
    return doc


def _running_steps(store: StateStore) -> list[dict[str, Any]]:
    rows = store.db.conn.execute(
        "SELECT steps.*, runs.repo_id FROM steps JOIN runs ON runs.id = steps.run_id"
        " WHERE steps.status='running' AND runs.status='running'"
    ).fetchall()
    return [dict(r) for r in rows]


def _last_runs(store: StateStore) -> list[dict[str, Any]]:
    rows = store.db.conn.execute(
        "SELECT runs.*, repos.path AS repo_path FROM runs JOIN repos ON repos.id = runs.repo_id"
        " WHERE runs.rowid IN (SELECT MAX(rowid) FROM runs GROUP BY repo_id)"
    ).fetchall()
    return [dict(r) for r in rows]
