"""The state store a process opens: the database with its run log and model registry."""

from __future__ import annotations

from pathlib import Path

from guardian.store.db import Database
from guardian.store.jobs import JobQueue
from guardian.store.registry import Registry
from guardian.store.runs import RunLog


class StateStore:
    """One open state dir: `db` (connection, repos), `runs` (runs, steps, artifacts),
    `registry` (models) and `jobs` (the queue)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.db = Database(home)
        self.runs = RunLog(self.db)
        self.registry = Registry(self.db)
        self.jobs = JobQueue(self.db)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
