"""What `guardian status` (and the API) shows: the daemon's own snapshot, `<home>/daemon.json`,
joined with the state DB's queue, running steps and last run per repo.

The daemon writes the snapshot as a `DaemonSnapshot`; this module reads it, so the file's
name and shape are defined here, once, where both sides can import them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from guardian.core.fsutil import pid_alive
from guardian.store.db import DB_NAME
from guardian.store.records import JobRecord, RunRecord, StepRecord
from guardian.store.state import StateStore

STATUS_NAME = "daemon.json"


class LastDecision(BaseModel):
    """The daemon's last verdict on a repo's queued job: run it or not, and why."""

    at: float
    run: bool
    why: str


class RepoStatus(BaseModel):
    """A repo the daemon watches, with the playbook it keeps current."""

    path: str
    playbook: str
    branch: str | None = None
    last_decision: LastDecision | None = None


class WorkerState(BaseModel):
    """A worker subprocess running one job."""

    job: str
    kind: str
    repo: str | None = None
    pid: int
    since: float


class DaemonSnapshot(BaseModel):
    """The daemon's state as it last wrote it; the defaults describe a state dir with none.

    `state` is one of starting, running, stopping, stopped; `schedules` maps a cron job to
    its next fire time (ISO) or "paused"."""

    state: str = "stopped"
    pid: int | None = None
    started_at: float | None = None
    updated_at: float | None = None
    config: str | None = None
    watch_mode: str | None = None
    repos: list[RepoStatus] = Field(default_factory=list)
    workers: list[WorkerState] = Field(default_factory=list)
    schedules: dict[str, str] = Field(default_factory=dict)
    torch_loaded: bool = False


class Status(DaemonSnapshot):
    """The snapshot joined with the state: jobs queued or running, running steps, last runs.

    `running` is False when no live daemon wrote the snapshot; `state` then says stopped.
    Queue, steps and runs are the store's records."""

    running: bool = False
    queue: list[JobRecord] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    last_runs: list[RunRecord] = Field(default_factory=list)


def read_snapshot(home: Path) -> DaemonSnapshot | None:
    """The daemon's last snapshot in `home`; None when there is none or it is unreadable."""
    try:
        return DaemonSnapshot.model_validate_json((home / STATUS_NAME).read_bytes())
    except (OSError, ValidationError):
        return None


def status(home: Path) -> Status:
    """The state dir's daemon, queue, running steps and last run per repo, read now."""
    snap = read_snapshot(home) or DaemonSnapshot()
    running = snap.state != "stopped" and pid_alive(snap.pid)
    found = Status(**snap.model_dump(), running=running)
    if not running:
        found.state = "stopped"
    if not (home / DB_NAME).exists():
        return found
    with StateStore(home) as store:
        found.queue = store.jobs.listed(("queued", "running"))
        found.steps = store.runs.running_steps()
        found.last_runs = store.runs.last_per_repo()
    return found
