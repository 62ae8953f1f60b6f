"""Runs and their steps in the state file, plus the record of committed artifacts."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from guardian.core.fsutil import pid_alive
from guardian.errors import StateError
from guardian.store.db import RUN_ID, Database, new_run_id, now
from guardian.store.records import (
    RunRecord,
    RunResult,
    RunStatus,
    StepRecord,
    StepStatus,
)

__all__ = ["RunLog", "RunStatus", "StepStatus"]


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

    def finish(self, run_id: str, result: RunResult) -> None:
        """Record a run's end: its status, gate outcome, evaluation, note and report dir."""
        with self.db.tx() as c:
            c.execute(
                "UPDATE runs SET status=?, decision=?, report_path=?, error=?, finished_at=?,"
                " gate=?, gate_inputs=?, evaluation=?, note=?, warnings=?, promoted_path=?,"
                " talk=?, override=?, seconds=? WHERE id=?",
                (
                    str(result.status),
                    result.verdict,
                    result.report_path,
                    result.error,
                    now(),
                    _dump(result.gate),
                    _dump(result.gate_inputs),
                    json.dumps(result.evaluation) if result.evaluation is not None else None,
                    result.note,
                    json.dumps(result.warnings),
                    result.promoted_path,
                    result.talk,
                    _dump(result.override),
                    result.seconds,
                    run_id,
                ),
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

    def get(self, run_id: str) -> RunRecord | None:
        """One run with its repo's path and name, or None."""
        row = self.db.conn.execute(_RUN_SELECT + " WHERE runs.id = ?", (run_id,)).fetchone()
        return _run(row) if row else None

    def require(self, run_id: str) -> RunRecord:
        """The run with this id; a StateError names a malformed or unknown id."""
        if not RUN_ID.fullmatch(run_id):
            raise StateError(f"run '{run_id}': not a run id (see `guardian runs`)")
        run = self.get(run_id)
        if run is None:
            raise StateError(f"run '{run_id}': not in the state at {self.db.home}")
        return run

    def recent(self, limit: int = 20, repo_id: int | None = None) -> list[RunRecord]:
        """Most recent runs first."""
        sql = _RUN_SELECT
        args: tuple[Any, ...] = ()
        if repo_id is not None:
            sql += " WHERE runs.repo_id = ?"
            args = (repo_id,)
        sql += " ORDER BY runs.started_at DESC, runs.rowid DESC LIMIT ?"
        return [_run(r) for r in self.db.conn.execute(sql, (*args, limit)).fetchall()]

    def last(self, repo_id: int, statuses: tuple[str, ...] = ("succeeded",)) -> RunRecord | None:
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

    def steps(self, run_id: str) -> list[StepRecord]:
        """The steps of a run in order."""
        rows = self.db.conn.execute(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY position, id", (run_id,)
        ).fetchall()
        return [_step(r) for r in rows]

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

    def running_steps(self) -> list[StepRecord]:
        """The steps running now, in runs still running."""
        rows = self.db.conn.execute(
            "SELECT steps.* FROM steps JOIN runs ON runs.id = steps.run_id"
            " WHERE steps.status='running' AND runs.status='running'"
        ).fetchall()
        return [_step(r) for r in rows]

    def last_per_repo(self) -> list[RunRecord]:
        """The latest run of each repo."""
        rows = self.db.conn.execute(
            _RUN_SELECT + " WHERE runs.rowid IN (SELECT MAX(rowid) FROM runs GROUP BY repo_id)"
        ).fetchall()
        return [_run(r) for r in rows]


def _dump(record: Any) -> str | None:
    return None if record is None else str(record.model_dump_json())


def _loaded(text: str | None) -> Any:
    return json.loads(text) if text else None


def _run(row: sqlite3.Row) -> RunRecord:
    """A runs row (joined with its repo) as a record, its JSON columns decoded."""
    d = dict(row)
    for key in ("gate", "gate_inputs", "evaluation", "override"):
        d[key] = _loaded(d.get(key))
    d["warnings"] = _loaded(d.get("warnings")) or []
    d["note"] = d.get("note") or ""
    return RunRecord.model_validate(d)


def _step(row: sqlite3.Row) -> StepRecord:
    d = dict(row)
    d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else {}
    return StepRecord(**d)
