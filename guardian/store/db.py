"""The SQLite state file (WAL): connection, write transactions, migrations on open, repos."""

from __future__ import annotations

import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from guardian.errors import StateError
from guardian.store.migrations import migrate

DB_NAME = "guardian.db"
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")  # what new_run_id makes
BUSY_SECONDS = 30.0  # how long an open waits on another process's lock, in every form


def now() -> str:
    """UTC timestamp in ISO-8601 with seconds precision."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL, retrying while another process holds it.

    SQLite answers a journal-mode change that would wait on another connection's lock with
    SQLITE_BUSY at once, without calling the busy handler, so concurrent first opens of a fresh
    state dir would otherwise fail at random.
    """
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Database:
    """One connection to `<home>/guardian.db`, migrated on open; shared by CLI, daemon, API."""

    def __init__(self, home: Path) -> None:
        self.home = home
        if home.exists() and not home.is_dir():
            raise StateError(f"{home}: the state dir is a file, not a directory ($GUARDIAN_HOME)")
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"{home}: cannot create the state dir ({exc.strerror})") from None
        self.path = home / DB_NAME
        try:
            self.conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            _enable_wal(self.conn)
            self.conn.execute("PRAGMA foreign_keys=ON")
            migrate(self.conn, self.path)
        except sqlite3.DatabaseError as exc:
            hint = "" if os.access(home, os.W_OK) else "; the state dir is not writable"
            raise StateError(f"{self.path}: cannot open state database ({exc}){hint}") from exc

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @property
    def schema_version(self) -> int:
        """The number of migrations applied."""
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

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

    def integrity_check(self) -> list[str]:
        """SQLite's integrity verdict: ["ok"], or the problems it found."""
        return [str(r[0]) for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
