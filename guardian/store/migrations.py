"""Named schema migrations, recorded by name in the state file as they are applied.

A state file made before names were recorded (it has only `PRAGMA user_version`) adopts the
first `user_version` names as applied. `user_version` is still kept equal to the number of
migrations, so an older guardian refuses a newer file instead of misreading it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from guardian.errors import StateError


@dataclass(frozen=True)
class Migration:
    """One schema change: a stable name, the SQL statements that make it, and optionally a
    function of the connection and the state dir run after them in the same transaction
    (to fill new columns from old data)."""

    name: str
    sql: str
    fn: Callable[[sqlite3.Connection, Path], None] | None = None


_RESULT_KEYS = (
    "decision",
    "gate_inputs",
    "note",
    "warnings",
    "promoted_path",
    "override",
    "seconds",
)
_EVALUATION_KEYS = (
    "challenger",
    "baseline",
    "baseline_kind",
    "baseline_note",
    "difference_ci",
    "probe",
)


def _result_from_old_report(conn: sqlite3.Connection, home: Path) -> None:
    """Runs recorded before the gate outcome lived in the state get it from the report file
    their run wrote then (in the state dir's reports/, wherever the dir has moved): the one
    time a report document is read instead of written."""
    for (run_id,) in conn.execute("SELECT id FROM runs").fetchall():
        try:
            doc = json.loads((home / "reports" / run_id / "report.json").read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        old = {k: doc.get(k) for k in _RESULT_KEYS}
        evaluation = {k: doc[k] for k in _EVALUATION_KEYS if doc.get(k) is not None}
        conn.execute(
            "UPDATE runs SET gate=?, gate_inputs=?, evaluation=?, note=?, warnings=?,"
            " promoted_path=?, override=?, seconds=? WHERE id=?",
            (
                _json_or_none(old["decision"]),
                _json_or_none(old["gate_inputs"]),
                _json_or_none(evaluation or None),
                str(old["note"] or ""),
                json.dumps(old["warnings"] or []),
                old["promoted_path"],
                _json_or_none(old["override"]),
                old["seconds"],
                run_id,
            ),
        )


def _json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value)


MIGRATIONS: list[Migration] = [
    Migration(
        "0001_foundation",
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
    ),
    Migration(
        "0002_jobs",
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
    ),
    Migration(
        "0003_model_digest",
        """
        ALTER TABLE models ADD COLUMN digest TEXT
        """,
    ),
    Migration(
        "0004_model_override",
        """
        ALTER TABLE models ADD COLUMN override TEXT
        """,
    ),
    Migration(
        "0005_model_placement",
        """
        ALTER TABLE models ADD COLUMN placement TEXT
        """,
    ),
    Migration(
        "0006_job_queue",
        """
        ALTER TABLE jobs ADD COLUMN playbook TEXT;
        ALTER TABLE jobs ADD COLUMN pid INTEGER;
        ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN not_before TEXT;
        CREATE INDEX jobs_repo ON jobs(repo_id, playbook, status);
        """,
    ),
    Migration(
        "0007_run_result",
        """
        ALTER TABLE runs ADD COLUMN gate TEXT;
        ALTER TABLE runs ADD COLUMN gate_inputs TEXT;
        ALTER TABLE runs ADD COLUMN evaluation TEXT;
        ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE runs ADD COLUMN promoted_path TEXT;
        ALTER TABLE runs ADD COLUMN talk TEXT;
        ALTER TABLE runs ADD COLUMN override TEXT;
        ALTER TABLE runs ADD COLUMN seconds REAL
        """,
        _result_from_old_report,
    ),
]

_LEDGER = "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations recorded in this state file, in the order applied."""
    rows = conn.execute("SELECT name FROM migrations ORDER BY rowid").fetchall()
    return [str(r[0]) for r in rows]


def _current(conn: sqlite3.Connection, count: int) -> bool:
    """Whether the file already has every migration (a read, no lock taken)."""
    if int(conn.execute("PRAGMA user_version").fetchone()[0]) != count:
        return False
    ledger = conn.execute("SELECT 1 FROM sqlite_master WHERE name='migrations'").fetchone()
    return bool(ledger) and len(applied(conn)) == count


def migrate(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Apply every migration this file lacks, in one write transaction; returns their names.

    Reading what is applied happens inside the transaction, so concurrent first opens of a
    fresh state dir serialise instead of racing to create the same tables.
    """
    known = [m.name for m in MIGRATIONS]
    if _current(conn, len(known)):
        return []  # nothing to do: no write transaction, so an idle reader writes nothing
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute(_LEDGER)
        done = applied(conn)
        if not done and version:
            done = known[:version]
            conn.executemany(
                "INSERT INTO migrations(name, applied_at) VALUES (?, ?)",
                [(name, _stamp()) for name in done],
            )
        unknown = [name for name in done if name not in known]
        if unknown or version > len(known):
            raise StateError(
                f"{path}: schema version {max(version, len(done))} is newer than this guardian "
                f"({len(known)}); upgrade repo-guardian"
            )
        ran = []
        for migration in MIGRATIONS:
            if migration.name in done:
                continue
            for statement in migration.sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if migration.fn is not None:
                migration.fn(conn, path.parent)
            conn.execute(
                "INSERT INTO migrations(name, applied_at) VALUES (?, ?)", (migration.name, _stamp())
            )
            ran.append(migration.name)
        if version != len(known):
            conn.execute(f"PRAGMA user_version = {len(known)}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return ran
