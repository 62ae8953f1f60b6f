"""The one job queue: triggers from hooks, the watcher, cron, the CLI and the API are rows here.

A trigger for a repo+playbook that already has a queued job joins it (its reason is added),
so a burst of commits is one run. The daemon claims queued jobs one transaction at a time,
so two workers never take the same job, and a job whose worker died with the daemon goes
back to the queue when the daemon starts again: its run resumes from the last finished step.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from guardian.store.db import Database, now

MAX_REASONS = 20


class JobStatus(StrEnum):
    """A job's life: queued, running, then done or failed (or back to queued on restart)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def _decoded(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["payload"] = json.loads(d["payload"] or "{}")
    return d


class JobQueue:
    """Typed access to the jobs table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self,
        repo_id: int,
        playbook: str,
        reason: str,
        kind: str = "run",
        delay_seconds: float = 0.0,
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, bool]:
        """Queue a job for repo+playbook, or join the queued one; returns (id, joined).

        `extra` is kept in the job's payload (a promote job's run id)."""
        stamp = now()
        not_before = _after(delay_seconds) if delay_seconds > 0 else None
        with self.db.tx() as c:
            row = c.execute(
                "SELECT * FROM jobs WHERE repo_id=? AND playbook=? AND kind=? AND status='queued'"
                " ORDER BY created_at, rowid LIMIT 1",
                (repo_id, playbook, kind),
            ).fetchone()
            if row is not None:
                payload = json.loads(row["payload"] or "{}")
                reasons = [*payload.get("reasons", []), f"{stamp} {reason}"]
                payload["reasons"] = reasons[-MAX_REASONS:]
                payload["triggers"] = int(payload.get("triggers", 1)) + 1
                payload.update(extra or {})
                c.execute("UPDATE jobs SET payload=? WHERE id=?", (json.dumps(payload), row["id"]))
                return str(row["id"]), True
            job_id = uuid.uuid4().hex[:12]
            payload = {"reasons": [f"{stamp} {reason}"], "triggers": 1, **(extra or {})}
            c.execute(
                "INSERT INTO jobs(id, kind, repo_id, playbook, payload, status, created_at,"
                " not_before) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (job_id, kind, repo_id, playbook, json.dumps(payload), stamp, not_before),
            )
            return job_id, False

    def claim(self, pid: int) -> dict[str, Any] | None:
        """Take the oldest due queued job of a repo with nothing running (with its repo's path
        and name); None if none."""
        with self.db.tx() as c:
            row = c.execute(
                "SELECT * FROM jobs WHERE status='queued'"
                " AND (not_before IS NULL OR not_before <= ?)"
                " AND repo_id NOT IN (SELECT repo_id FROM jobs WHERE status='running')"
                " ORDER BY created_at, rowid LIMIT 1",
                (now(),),
            ).fetchone()
            if row is None:
                return None
            c.execute(
                "UPDATE jobs SET status='running', pid=?, started_at=?, attempts=attempts+1"
                " WHERE id=?",
                (pid, now(), row["id"]),
            )
        job = _decoded(row)
        job.update(status=JobStatus.RUNNING, pid=pid, attempts=int(row["attempts"]) + 1)
        repo = self.db.conn.execute(
            "SELECT path, name FROM repos WHERE id=?", (row["repo_id"],)
        ).fetchone()
        job.update(
            repo_path=repo["path"] if repo else None, repo_name=repo["name"] if repo else None
        )
        return job

    def set_worker(self, job_id: str, pid: int) -> None:
        """Record the worker process that runs a claimed job."""
        with self.db.tx() as c:
            c.execute("UPDATE jobs SET pid=? WHERE id=?", (pid, job_id))

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        run_id: str | None = None,
        error: str | None = None,
        note: str | None = None,
    ) -> None:
        """Mark a job done or failed, with the run it made, the error, and a note (why a job
        was skipped) kept in its payload."""
        with self.db.tx() as c:
            row = c.execute("SELECT payload FROM jobs WHERE id=?", (job_id,)).fetchone()
            payload = json.loads(row["payload"] or "{}") if row else {}
            if note is not None:
                payload["note"] = note
            c.execute(
                "UPDATE jobs SET status=?, run_id=COALESCE(?, run_id), error=?, finished_at=?,"
                " payload=? WHERE id=?",
                (str(status), run_id, error, now(), json.dumps(payload), job_id),
            )

    def requeue(self, job_id: str, reason: str, delay_seconds: float = 0.0) -> None:
        """Put a running job back in the queue (stopped by a shutdown, or to retry later)."""
        not_before = _after(delay_seconds) if delay_seconds > 0 else None
        with self.db.tx() as c:
            row = c.execute("SELECT payload FROM jobs WHERE id=?", (job_id,)).fetchone()
            payload = json.loads(row["payload"] or "{}") if row else {}
            payload["reasons"] = [*payload.get("reasons", []), f"{now()} {reason}"][-MAX_REASONS:]
            c.execute(
                "UPDATE jobs SET status='queued', pid=NULL, not_before=?, payload=? WHERE id=?",
                (not_before, json.dumps(payload), job_id),
            )

    def recover(self, alive: Callable[[int | None], bool]) -> list[str]:
        """Running jobs whose worker is dead go back to the queue; returns their ids."""
        rows = self.db.conn.execute("SELECT id, pid FROM jobs WHERE status='running'").fetchall()
        dead = [str(r["id"]) for r in rows if not alive(r["pid"])]
        for job_id in dead:
            self.requeue(job_id, "resumed: its worker stopped with the previous daemon")
        return dead

    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job, or None."""
        row = self.db.conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _decoded(row) if row else None

    def listed(self, statuses: tuple[str, ...] = (), limit: int = 50) -> list[dict[str, Any]]:
        """Jobs (with their repo's path and name), newest first, optionally by status."""
        sql = (
            "SELECT jobs.*, repos.path AS repo_path, repos.name AS repo_name FROM jobs"
            " LEFT JOIN repos ON repos.id = jobs.repo_id"
        )
        args: tuple[Any, ...] = ()
        if statuses:
            sql += f" WHERE jobs.status IN ({','.join('?' * len(statuses))})"
            args = statuses
        sql += " ORDER BY jobs.created_at DESC, jobs.rowid DESC LIMIT ?"
        return [_decoded(r) for r in self.db.conn.execute(sql, (*args, limit)).fetchall()]


def _after(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")
