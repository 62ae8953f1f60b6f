"""The model registry: the champion, the previous champion and the history per repo+skill."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from guardian.store.db import Database, now


class Registry:
    """Typed access to the models table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def champion(self, repo_id: int, skill: str) -> dict[str, Any] | None:
        """The current champion model for repo+skill, or None."""
        row = self.db.conn.execute(
            "SELECT * FROM models WHERE repo_id=? AND skill=? AND status='champion'"
            " ORDER BY id DESC LIMIT 1",
            (repo_id, skill),
        ).fetchone()
        if not row:
            return None
        d = dict(row)
        d["metrics"] = json.loads(d["metrics"])
        d["override"] = json.loads(d["override"]) if d.get("override") else None
        return d

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
        override: dict[str, Any] | None = None,
    ) -> int:
        """Make a model the champion; the previous champion is kept as 'previous'.

        `digest` is the promoted dir's content digest, so `guardian doctor` can verify it;
        `override` (who, why, when) marks a promotion forced past the gate.
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
                " status, promoted_at, digest, override)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'champion', ?, ?, ?)",
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
                    json.dumps(override) if override is not None else None,
                ),
            )
            return int(cur.lastrowid or 0)

    def champions(self) -> list[dict[str, Any]]:
        """Every current champion (one per repo+skill), with its repo's name."""
        rows = self.db.conn.execute(
            "SELECT models.*, repos.name AS repo_name FROM models"
            " JOIN repos ON repos.id = models.repo_id WHERE status='champion' ORDER BY models.id"
        ).fetchall()
        return [dict(r) for r in rows]

    def models(self, repo_id: int | None = None) -> list[dict[str, Any]]:
        """All model records, newest first."""
        sql = "SELECT * FROM models"
        args: tuple[Any, ...] = ()
        if repo_id is not None:
            sql += " WHERE repo_id = ?"
            args = (repo_id,)
        rows = self.db.conn.execute(sql + " ORDER BY id DESC", args).fetchall()
        return [dict(r) for r in rows]
