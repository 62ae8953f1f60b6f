"""The one job queue: triggers from hooks, the watcher, cron, the CLI and the API are rows here.

A trigger for a repo+playbook that already has a queued job joins it (its reason is added),
so a burst of commits is one run. The daemon claims queued jobs one transaction at a time,
so two workers never take the same job, and a job whose worker died with the daemon goes
back to the queue when the daemon starts again: its run resumes from the last finished step.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from guardian.store.db import Database, now
from guardian.store.records import JobKind, JobPayload, JobRecord, JobStatus

__all__ = ["MAX_REASONS", "JobKind", "JobQueue", "JobStatus"]

MAX_REASONS = 20


_JOB_SELECT = (
    "SELECT jobs.*, repos.path AS repo_path, repos.name AS repo_name FROM jobs"
    " LEFT JOIN repos ON repos.id = jobs.repo_id"
)


def _decoded(row: sqlite3.Row) -> JobRecord:
    d = dict(row)
    d["payload"] = json.loads(d["payload"] or "{}")
    return JobRecord.model_validate(d)


class JobQueue:
    """Typed access to the jobs table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(
        self,
        repo_id: int,
        playbook: str,
        reason: str,
        kind: JobKind = JobKind.RUN,
        delay_seconds: float = 0.0,
        run_id: str | None = None,
    ) -> tuple[str, bool]:
        """Queue a job for repo+playbook, or join the queued one; returns (id, joined).

        `run_id` is kept in the job's payload (the run a promote job promotes)."""
        stamp = now()
        not_before = _after(delay_seconds) if delay_seconds > 0 else None
        with self.db.tx() as c:
            row = c.execute(
                "SELECT * FROM jobs WHERE repo_id=? AND playbook=? AND kind=? AND status='queued'"
                " ORDER BY created_at, rowid LIMIT 1",
                (repo_id, playbook, kind),
            ).fetchone()
            if row is not None:
                payload = JobPayload.model_validate_json(row["payload"] or "{}")
                payload.reasons = [*payload.reasons, f"{stamp} {reason}"][-MAX_REASONS:]
                payload.triggers += 1
                payload.run_id = run_id or payload.run_id
                c.execute(
                    "UPDATE jobs SET payload=? WHERE id=?", (payload.model_dump_json(), row["id"])
                )
                return str(row["id"]), True
            job_id = uuid.uuid4().hex[:12]
            payload = JobPayload(reasons=[f"{stamp} {reason}"], run_id=run_id)
            c.execute(
                "INSERT INTO jobs(id, kind, repo_id, playbook, payload, status, created_at,"
                " not_before) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                (
                    job_id,
                    str(kind),
                    repo_id,
                    playbook,
                    payload.model_dump_json(),
                    stamp,
                    not_before,
                ),
            )
            return job_id, False

    @staticmethod
    def _payload_of(c: sqlite3.Connection, job_id: str) -> JobPayload:
        row = c.execute("SELECT payload FROM jobs WHERE id=?", (job_id,)).fetchone()
        return JobPayload.model_validate_json(row["payload"] or "{}") if row else JobPayload()

    def claim(self, pid: int) -> JobRecord | None:
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
        return self.get(str(row["id"]))

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
            payload = self._payload_of(c, job_id)
            if note is not None:
                payload.note = note
            c.execute(
                "UPDATE jobs SET status=?, run_id=COALESCE(?, run_id), error=?, finished_at=?,"
                " payload=? WHERE id=?",
                (str(status), run_id, error, now(), payload.model_dump_json(), job_id),
            )

    def requeue(self, job_id: str, reason: str, delay_seconds: float = 0.0) -> None:
        """Put a running job back in the queue (stopped by a shutdown, or to retry later)."""
        not_before = _after(delay_seconds) if delay_seconds > 0 else None
        with self.db.tx() as c:
            payload = self._payload_of(c, job_id)
            payload.reasons = [*payload.reasons, f"{now()} {reason}"][-MAX_REASONS:]
            c.execute(
                "UPDATE jobs SET status='queued', pid=NULL, not_before=?, payload=? WHERE id=?",
                (not_before, payload.model_dump_json(), job_id),
            )

    def recover(self, alive: Callable[[int | None], bool]) -> list[str]:
        """Running jobs whose worker is dead go back to the queue; returns their ids."""
        rows = self.db.conn.execute("SELECT id, pid FROM jobs WHERE status='running'").fetchall()
        dead = [str(r["id"]) for r in rows if not alive(r["pid"])]
        for job_id in dead:
            self.requeue(job_id, "resumed: its worker stopped with the previous daemon")
        return dead

    def get(self, job_id: str) -> JobRecord | None:
        """One job (with its repo's path and name), or None."""
        row = self.db.conn.execute(_JOB_SELECT + " WHERE jobs.id=?", (job_id,)).fetchone()
        return _decoded(row) if row else None

    def listed(self, statuses: tuple[str, ...] = (), limit: int = 50) -> list[JobRecord]:
        """Jobs (with their repo's path and name), newest first, optionally by status."""
        sql = _JOB_SELECT
        args: tuple[Any, ...] = ()
        if statuses:
            sql += f" WHERE jobs.status IN ({','.join('?' * len(statuses))})"
            args = statuses
        sql += " ORDER BY jobs.created_at DESC, jobs.rowid DESC LIMIT ?"
        return [_decoded(r) for r in self.db.conn.execute(sql, (*args, limit)).fetchall()]


def _after(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")
