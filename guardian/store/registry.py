"""The model registry: the champion, the previous champion and the history per repo+skill."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from guardian.errors import StateError
from guardian.store.db import Database, now
from guardian.store.records import ModelRecord, ModelStatus, Override, Placement


class Registry:
    """Typed access to the models table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def champion(self, repo_id: int, skill: str) -> ModelRecord | None:
        """The current champion model for repo+skill, or None."""
        row = self.db.conn.execute(
            "SELECT * FROM models WHERE repo_id=? AND skill=? AND status='champion'"
            " ORDER BY id DESC LIMIT 1",
            (repo_id, skill),
        ).fetchone()
        if not row:
            return None
        return _decoded(row)

    def previous(self, repo_id: int, skill: str) -> ModelRecord | None:
        """The model the champion replaced (what a rollback goes back to), or None."""
        row = self.db.conn.execute(
            "SELECT * FROM models WHERE repo_id=? AND skill=? AND status='previous'"
            " ORDER BY id DESC LIMIT 1",
            (repo_id, skill),
        ).fetchone()
        return _decoded(row) if row else None

    def rollback(self, repo_id: int, skill: str) -> ModelRecord:
        """Swap champion and previous for repo+skill; returns the new champion."""
        champ, prev = self.champion(repo_id, skill), self.previous(repo_id, skill)
        if champ is None or prev is None:
            raise StateError(f"repo {repo_id} / {skill}: no previous model to roll back to")
        with self.db.tx() as c:
            c.execute("UPDATE models SET status='previous' WHERE id=?", (champ.id,))
            c.execute(
                "UPDATE models SET status='champion', promoted_at=? WHERE id=?", (now(), prev.id)
            )
        return prev.model_copy(update={"status": ModelStatus.CHAMPION})

    def promote(
        self,
        repo_id: int,
        skill: str,
        run_id: str,
        artifact_key: str,
        path: Path,
        base: str,
        metrics: dict[str, Any],
        digest: str | None = None,
        override: Override | None = None,
        placement: Placement | None = None,
    ) -> int:
        """Make a model the champion; the previous champion is kept as 'previous'.

        `digest` is the promoted dir's content digest, so `guardian doctor` can verify it;
        `override` (who, why, when) marks a promotion forced past the gate; `placement` says
        where else the model was published (an Ollama name, tag and manifest digest).
        """
        with self.db.tx() as c:
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
                " status, promoted_at, digest, override, placement)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'champion', ?, ?, ?, ?)",
                (
                    repo_id,
                    skill,
                    run_id,
                    artifact_key,
                    str(path),
                    base,
                    json.dumps(metrics),
                    now(),
                    digest,
                    override.model_dump_json() if override is not None else None,
                    json.dumps(placement.record()) if placement is not None else None,
                ),
            )
            return int(cur.lastrowid or 0)

    def champions(self) -> list[ModelRecord]:
        """Every current champion (one per repo+skill), with its repo's name."""
        rows = self.db.conn.execute(
            "SELECT models.*, repos.name AS repo_name FROM models"
            " JOIN repos ON repos.id = models.repo_id WHERE status='champion' ORDER BY models.id"
        ).fetchall()
        return [_decoded(r) for r in rows]

    def models(self, repo_id: int | None = None) -> list[ModelRecord]:
        """All model records with their repo's name, newest first (JSON fields decoded)."""
        sql = (
            "SELECT models.*, repos.name AS repo_name FROM models"
            " JOIN repos ON repos.id = models.repo_id"
        )
        args: tuple[Any, ...] = ()
        if repo_id is not None:
            sql += " WHERE repo_id = ?"
            args = (repo_id,)
        rows = self.db.conn.execute(sql + " ORDER BY models.id DESC", args).fetchall()
        return [_decoded(r) for r in rows]


def _decoded(row: sqlite3.Row) -> ModelRecord:
    """A models row as a record, its metrics, override and placement JSON parsed."""
    d = dict(row)
    d["metrics"] = json.loads(d["metrics"]) if d.get("metrics") else {}
    for key in ("override", "placement"):
        d[key] = json.loads(d[key]) if d.get(key) else None
    return ModelRecord.model_validate(d)
