"""Triggers: a row in the jobs table first (so nothing is lost when the daemon is down or
killed), then a best-effort wake-up datagram to the running daemon's socket."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from guardian.config.settings import GuardianConfig
from guardian.core.gitutil import is_git_repo
from guardian.errors import RepoError
from guardian.store.state import StateStore

SOCKET_NAME = "daemon.sock"


def socket_path(home: Path) -> Path:
    """The daemon's wake-up socket in the state dir."""
    return home / SOCKET_NAME


class Triggered(BaseModel):
    """What a trigger did: the job it made or joined, and whether a daemon was woken.

    An empty `playbook` means the daemon picks it (its config's playbook for the repo)."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    joined: bool
    playbook: str
    woke: bool


def playbook_for(config: GuardianConfig, repo: Path) -> str | None:
    """The playbook config.yaml names for this repo; None leaves it to the daemon's config."""
    for entry in config.repos:
        if config.repo_path(entry) == repo:
            return entry.playbook
    return None


def trigger(
    config: GuardianConfig, repo: Path, reason: str, playbook: str | None = None
) -> Triggered:
    """Queue a run of `repo` (joining a queued one) and wake the daemon if it runs."""
    repo = repo.expanduser().resolve()
    if not is_git_repo(repo):
        raise RepoError(f"{repo}: not a git repository")
    name = playbook or playbook_for(config, repo) or ""
    with StateStore(config.home) as store:
        repo_id = store.db.ensure_repo(repo, repo.name)
        job_id, joined = store.jobs.enqueue(repo_id, name, reason)
    return Triggered(job_id=job_id, joined=joined, playbook=name, woke=wake(config.home))


def wake(home: Path) -> bool:
    """Nudge a running daemon to look at the queue now; False when none listens."""
    path = socket_path(home)
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        try:
            sock.sendto(b"wake", str(path))
        except OSError:
            return False
    return True
