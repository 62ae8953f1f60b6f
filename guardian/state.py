"""The state store: one SQLite file (WAL) with numbered migrations, shared by CLI, daemon, API."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from guardian.errors import StateError

DB_NAME = "guardian.db"


class RunStatus(StrEnum):
    """Life cycle of a run: running, then exactly one of the terminal states."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StepStatus(StrEnum):
    """Outcome of one step in a run: reused from the cache, ran, or did not finish."""

    RUNNING = "running"
    CACHED = "cached"
    RAN = "ran"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


MIGRATIONS: list[str] = [
    # 1: the foundation schema
    """
    CREATE TABLE repos (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        added_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        repo_id INTEGER NOT NULL REFERENCES repos(id),
        playbook TEXT NOT NULL,
        commit_sha TEXT,
        status TEXT NOT NULL,
        decision TEXT,
        report_path TEXT,
        error TEXT,
        pid INTEGER,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX runs_repo ON runs(repo_id, started_at);
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        position INTEGER NOT NULL,
        skill TEXT NOT NULL,
        step TEXT NOT NULL,
        artifact_key TEXT,
        status TEXT NOT NULL,
        seconds REAL,
        metrics TEXT,
        error TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX steps_run ON steps(run_id, position);
    CREATE TABLE artifacts (
        key TEXT PRIMARY KEY,
        step TEXT NOT NULL,
        kind TEXT NOT NULL,
        path TEXT NOT NULL,
        digest TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        run_id TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        repo_id INTEGER NOT NULL REFERENCES repos(id),
        skill TEXT NOT NULL,
        run_id TEXT NOT NULL,
        artifact_key TEXT NOT NULL,
        path TEXT NOT NULL,
        base TEXT NOT NULL,
        metrics TEXT NOT NULL,
        status TEXT NOT NULL,
        promoted_at TEXT NOT NULL
    );
    CREATE INDEX models_champion ON models(repo_id, skill, status);
    """,
    # 2: the job queue the daemon and API share
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        repo_id INTEGER REFERENCES repos(id),
        payload TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        run_id TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE INDEX jobs_status ON jobs(status, created_at);
    """,
]


def now() -> str:
    """UTC timestamp in ISO-8601 with seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (used to tell stale runs and temp dirs)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StateStore:
    """Typed access to the SQLite state file; migrations run on open."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.path = home / DB_NAME
        try:
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{self.path}: cannot open state database ({exc})") from exc

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The number of migrations applied."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StateError(
                f"{self.path}: schema version {current} is newer than this guardian "
                f"({len(MIGRATIONS)}); upgrade repo-guardian"
            )
        for number in range(current, len(MIGRATIONS)):
            with self.tx():
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on error)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # repos ---------------------------------------------------------------------------
    def ensure_repo(self, path: Path, name: str) -> int:
        """The id of the repo at `path`, registering it on first sight."""
        key = str(path.resolve())
        with self.tx() as c:
            row = c.execute("SELECT id FROM repos WHERE path = ?", (key,)).fetchone()
            if row:
                return int(row["id"])
            cur = c.execute(
                "INSERT INTO repos(path, name, added_at) VALUES (?, ?, ?)", (key, name, now())
            )
            return int(cur.lastrowid or 0)

    def repo_id(self, path: Path) -> int | None:
        """The id of a registered repo, or None."""
        row = self.conn.execute(
            "SELECT id FROM repos WHERE path = ?", (str(path.resolve()),)
        ).fetchone()
        return int(row["id"]) if row else None

    # runs ----------------------------------------------------------------------------
    def start_run(self, repo_id: int, playbook: str, commit: str) -> str:
        """Record a new running run and return its id."""
        run_id = new_run_id()
        with self.tx() as c:
            c.execute(
                "INSERT INTO runs(id, repo_id, playbook, commit_sha, status, pid, started_at)"
                " VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (run_id, repo_id, playbook, commit, os.getpid(), now()),
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        status: str,
        decision: str | None = None,
        report_path: Path | None = None,
        error: str | None = None,
    ) -> None:
        """Mark a run finished (succeeded, failed, interrupted) with its decision and report."""
        with self.tx() as c:
            c.execute(
                "UPDATE runs SET status=?, decision=?, report_path=?, error=?, finished_at=?"
                " WHERE id=?",
                (status, decision, str(report_path) if report_path else None, error, now(), run_id),
            )

    def mark_stale_runs(self) -> int:
        """Runs left 'running' by a dead process become 'interrupted'; returns how many."""
        rows = self.conn.execute("SELECT id, pid FROM runs WHERE status = 'running'").fetchall()
        stale = [r["id"] for r in rows if not pid_alive(r["pid"])]
        with self.tx() as c:
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

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """One run as a dict (with repo path), or None."""
        row = self.conn.execute(
            "SELECT runs.*, repos.path AS repo_path, repos.name AS repo_name FROM runs"
            " JOIN repos ON repos.id = runs.repo_id WHERE runs.id = ?",
            (run_id,),
        ).fetchone()
        return dict(row) if row else None

    def list_runs(self, limit: int = 20, repo_id: int | None = None) -> list[dict[str, Any]]:
        """Most recent runs first."""
        sql = (
            "SELECT runs.*, repos.path AS repo_path, repos.name AS repo_name FROM runs"
            " JOIN repos ON repos.id = runs.repo_id"
        )
        args: tuple[Any, ...] = ()
        if repo_id is not None:
            sql += " WHERE runs.repo_id = ?"
            args = (repo_id,)
        sql += " ORDER BY runs.started_at DESC, runs.id DESC LIMIT ?"
        return [dict(r) for r in self.conn.execute(sql, (*args, limit)).fetchall()]

    def last_run(
        self, repo_id: int, statuses: tuple[str, ...] = ("succeeded",)
    ) -> dict[str, Any] | None:
        """The repo's most recent run in one of `statuses`, or None."""
        marks = ",".join("?" * len(statuses))
        row = self.conn.execute(
            f"SELECT id FROM runs WHERE repo_id = ? AND status IN ({marks})"
            " ORDER BY started_at DESC, id DESC",
            (repo_id, *statuses),
        ).fetchone()
        return self.get_run(row["id"]) if row else None

    # steps ---------------------------------------------------------------------------
    def start_step(self, run_id: str, position: int, skill: str, step: str, key: str) -> int:
        """Record a step beginning; returns its row id."""
        with self.tx() as c:
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
        with self.tx() as c:
            c.execute(
                "UPDATE steps SET status=?, seconds=?, metrics=?, error=?, finished_at=?"
                " WHERE id=?",
                (status, seconds, json.dumps(metrics or {}), error, now(), step_id),
            )

    def run_steps(self, run_id: str) -> list[dict[str, Any]]:
        """The steps of a run in order, metrics decoded."""
        rows = self.conn.execute(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY position, id", (run_id,)
        ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["metrics"] = json.loads(d["metrics"]) if d["metrics"] else {}
            out.append(d)
        return out

    # artifacts -----------------------------------------------------------------------
    def record_artifact(
        self, key: str, step: str, kind: str, path: Path, digest: str, size: int, run_id: str
    ) -> None:
        """Remember a committed artifact (idempotent)."""
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO artifacts(key, step, kind, path, digest, size_bytes,"
                " run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, step, kind, str(path), digest, size, run_id, now()),
            )

    # models --------------------------------------------------------------------------
    def champion(self, repo_id: int, skill: str) -> dict[str, Any] | None:
        """The current champion model for repo+skill, or None."""
        row = self.conn.execute(
            "SELECT * FROM models WHERE repo_id=? AND skill=? AND status='champion'"
            " ORDER BY id DESC LIMIT 1",
            (repo_id, skill),
        ).fetchone()
        if not row:
            return None
        d = dict(row)
        d["metrics"] = json.loads(d["metrics"])
        return d

    def promote_model(
        self,
        repo_id: int,
        skill: str,
        run_id: str,
        artifact_key: str,
        path: Path,
        base: str,
        metrics: dict[str, Any],
    ) -> int:
        """Make a model the champion; the previous champion is kept as 'previous'."""
        with self.tx() as c:
            c.execute(
                "UPDATE models SET status='retired'"
                " WHERE repo_id=? AND skill=? AND status='previous'",
                (repo_id, skill),
            )
            c.execute(
                "UPDATE models SET status='previous'"
                " WHERE repo_id=? AND skill=? AND status='champion'",
                (repo_id, skill),
            )
            cur = c.execute(
                "INSERT INTO models(repo_id, skill, run_id, artifact_key, path, base, metrics,"
                " status, promoted_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'champion', ?)",
                (repo_id, skill, run_id, artifact_key, str(path), base, json.dumps(metrics), now()),
            )
            return int(cur.lastrowid or 0)

    def models(self, repo_id: int | None = None) -> list[dict[str, Any]]:
        """All model records, newest first."""
        sql = "SELECT * FROM models"
        args: tuple[Any, ...] = ()
        if repo_id is not None:
            sql += " WHERE repo_id = ?"
            args = (repo_id,)
        rows = self.conn.execute(sql + " ORDER BY id DESC", args).fetchall()
        return [dict(r) for r in rows]
