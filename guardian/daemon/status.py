"""The daemon's own snapshot, `<home>/daemon.json`, rewritten every loop turn; engine.status
reads it back (joined with the state DB) for `guardian status` and the API."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from guardian.core.fsutil import atomic_write_text
from guardian.engine.status import (
    STATUS_NAME,
    DaemonSnapshot,
    LastDecision,
    RepoStatus,
    WorkerState,
)


def snapshot(daemon: Any) -> dict[str, Any]:
    """The running daemon's state: a `DaemonSnapshot` as its JSON-able dict."""
    config = daemon.config
    repos = []
    for r in config.repos:
        path = str(config.repo_path(r))
        said = daemon.decisions.get(path)
        repos.append(
            RepoStatus(
                path=path,
                playbook=r.playbook,
                branch=r.branch,
                last_decision=LastDecision.model_validate(said) if said else None,
            )
        )
    workers = [
        WorkerState(
            job=w.job_id,
            kind=str(w.job.kind),
            repo=w.job.repo_path,
            pid=w.proc.pid,
            since=w.started,
        )
        for w in daemon.workers.values()
    ]
    snap = DaemonSnapshot(
        state=str(daemon.state),
        pid=os.getpid(),
        started_at=daemon._started,
        updated_at=time.time(),
        config=str(config.source) if config.source else None,
        watch_mode=daemon.watcher.mode if daemon.watcher else None,
        repos=repos,
        workers=workers,
        schedules=daemon.cron.next_runs() if daemon.cron else {},
        torch_loaded="torch" in sys.modules,
    )
    return snap.model_dump(mode="json")


def write_status(home: Path, doc: dict[str, Any]) -> None:
    """Replace the snapshot file atomically (readers never see half of it)."""
    atomic_write_text(home / STATUS_NAME, json.dumps(doc, indent=2, default=str))
