"""Runs and their steps in the state file, plus the record of committed artifacts."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from guardian.core.fsutil import pid_alive
from guardian.store.db import Database, new_run_id, now


class RunStatus(StrEnum):
    """Life cycle of a run: running, then exactly one of the terminal states."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PROMOTION_PENDING = "promotion_pending"  # gate passed; the target was unreachable


class StepStatus(StrEnum):
    """Outcome of one step in a run: reused from the cache, ran, or did not finish."""

    RUNNING = "running"
    CACHED = "cached"
    RAN = "ran"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


_RUN_SELECT = (
    "SELECT runs.*, repos.path AS repo_path, repos.name AS repo_name FROM runs"
    " JOIN repos ON repos.id = runs.repo_id"
)


class RunLog:
    """Typed access to the runs, steps and artifacts tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, repo_id: int, playbook: str, commit: str) -> str:
        """Record a new running run and return its id."""
        run_id = new_run_id()
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO runs(id, repo_id, playbook, commit_sha, status, pid, started_at)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (run_id, repo_id, playbook, commit, os.getpid(), now()),
            )
        return run_id

    def finish(
        self,
        run_id: str,
        status: str,
        decision: str | None = None,
        report_path: Path | None = None,
        error: str | None = None,
    ) -> None:
        """Mark a run finished (succeeded, failed, interrupted) with its decision and report."""
        with self.db.tx() as c:
            c.execute(
                "UPDATE runs SET status=?, decision=?, report_path=?, error=?, finished_at=?"
                " WHERE id=?",
                (status, decision, str(report_path) if report_path else None, error, now(), run_id),
            )

    def mark_stale(self) -> int:
        """Runs left 'running' by a dead process become 'interrupted'; returns how many."""
        rows = self.db.conn.execute("SELECT id, pid FROM runs WHERE status = 'running'").fetchall()
        stale = [r["id"] for r in rows if not pid_alive(r["pid"])]
        with self.db.tx() as c:
            for run_id in stale:
                c.execute(
                    "UPDATE runs SET status='interrupted', finished_at=? WHERE id=?",
                    (now(), run_id),
                )
                c.execute(
                    "UPDATE steps SET status='interrupted', finished_at=?"
                    " WHERE run_id=? AND status='running'",
                    (now(), run_id),
                )
        return len(stale)

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run as a dict (with repo path), or None."""
        row = self.db.conn.execute(_RUN_SELECT + " WHERE runs.id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def recent(self, limit: int = 20, repo_id: int | None = None) -> list[dict[str, Any]]:
        """Most recent runs first."""
        sql = _RUN_SELECT
        args: tuple[Any, ...] = ()
        if repo_id is not None:
            sql += " WHERE runs.repo_id = ?"
            args = (repo_id,)
        sql += " ORDER BY runs.started_at DESC, runs.rowid DESC LIMIT ?"
        return [dict(r) for r in self.db.conn.execute(sql, (*args, limit)).fetchall()]

    def last(
        self, repo_id: int, statuses: tuple[str, ...] = ("succeeded",)
    ) -> dict[str, Any] | None:
        """The repo's most recent run in one of `statuses`, or None."""
        marks = ",".join("?" * len(statuses))
        row = self.db.conn.execute(
            f"SELECT id FROM runs WHERE repo_id = ? AND status IN ({marks})"
            " ORDER BY started_at DESC, rowid DESC",
            (repo_id, *statuses),
        ).fetchone()
        return self.get(row["id"]) if row else None

    def start_step(self, run_id: str, position: int, skill: str, step: str, key: str) -> int:
        """Record a step beginning; returns its row id."""
        with self.db.tx() as c:
            cur = c.execute(
                "INSERT INTO steps(run_id, position, skill, step, artifact_key, status, started_at)"
                " VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (run_id, position, skill, step, key, now()),
            )
            return int(cur.lastrowid or 0)

    def finish_step(
        self,
        step_id: int,
        status: str,
        seconds: float,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record a step's outcome: 'ran', 'cached' or 'failed'."""
        with self.db.tx() as c:
            c.execute(
                "UPDATE steps SET status=?, seconds=?, metrics=?, error=?, finished_at=?"
                " WHERE id=?",
                (status, seconds, json.dumps(metrics or {}), error, now(), step_id),
            )

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        """The steps of a run in order, metrics decoded."""
        rows = self.db.conn.execute(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY position, id", (run_id,)
        ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else {}
            out.append(d)
        return out

    def record_artifact(
        self, key: str, step: str, kind: str, path: Path, digest: str, size: int, run_id: str
    ) -> None:
        """Remember a committed artifact (idempotent)."""
        with self.db.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO artifacts(key, step, kind, path, digest, size_bytes,"
                " run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, step, kind, str(path), digest, size, run_id, now()),
            )

    def running_steps(self) -> list[dict[str, Any]]:
        """The steps running now in running runs, each with its run's repo_id."""
        rows = self.db.conn.execute(
            "SELECT steps.*, runs.repo_id FROM steps JOIN runs ON runs.id = steps.run_id"
            " WHERE steps.status='running' AND runs.status='running'"
        ).fetchall()
        return [dict(r) for r in rows]

    def last_per_repo(self) -> list[dict[str, Any]]:
        """The latest run of each repo, with the repo's path as `repo_path`."""
        rows = self.db.conn.execute(
            "SELECT runs.*, repos.path AS repo_path FROM runs JOIN repos ON repos.id = runs.repo_id"
            " WHERE runs.rowid IN (SELECT MAX(rowid) FROM runs GROUP BY repo_id)"
        ).fetchall()
        return [dict(r) for r in rows]
