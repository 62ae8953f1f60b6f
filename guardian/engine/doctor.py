"""`guardian doctor`: check the whole state dir and repair what can be repaired safely.

Checks the database's integrity, marks runs whose process died as interrupted, sweeps what
dead processes left half-written, verifies every cached artifact against its full digest
(quarantining a damaged one so the next run rebuilds it) and checks that every champion is
on disk and unchanged since it was promoted. Nothing a user relies on is deleted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from guardian.errors import StateError
from guardian.store.artifacts import ArtifactStore, Health, dir_digest
from guardian.store.state import StateStore


@dataclass(frozen=True)
class Finding:
    """One thing the doctor looked at: what it found, and whether it is fine now."""

    area: str
    message: str
    ok: bool


def _database(store: StateStore) -> list[Finding]:
    try:
        verdict = store.db.integrity_check()
    except sqlite3.DatabaseError as exc:
        return [Finding("database", f"{store.db.path}: unreadable ({exc})", False)]
    if verdict == ["ok"]:
        return [Finding("database", f"{store.db.path}: integrity ok", True)]
    detail = "; ".join(verdict[:3])
    return [Finding("database", f"{store.db.path}: damaged ({detail}); restore a backup", False)]


def _artifacts(artifacts: ArtifactStore) -> list[Finding]:
    found: list[Finding] = []
    checked = 0
    for key in artifacts.keys():
        health = artifacts.check(key, full=True)
        checked += 1
        if health is Health.OK:
            continue
        where = artifacts.quarantine(key)
        what = (
            "damaged (files differ from their digest)"
            if health is Health.DAMAGED
            else "incomplete (no metadata: left by a crash)"
        )
        found.append(Finding("artifacts", f"{key[:12]}: {what}; moved to {where}", True))
    found.append(Finding("artifacts", f"{checked} artifact dir(s) checked", True))
    return found


def _champions(store: StateStore) -> list[Finding]:
    found: list[Finding] = []
    for champ in store.registry.champions():
        path = Path(champ.path)
        label = f"champion of {champ.repo_name}/{champ.skill} (run {champ.run_id})"
        if not path.is_dir():
            found.append(Finding("champions", f"{label}: missing at {path}", False))
        elif champ.digest and dir_digest(path) != champ.digest:
            found.append(Finding("champions", f"{label}: {path} changed since promotion", False))
        else:
            found.append(Finding("champions", f"{label}: ok at {path}", True))
    return found


def examine(home: Path) -> list[Finding]:
    """Every finding for the state dir at `home`, repairing what is safe to repair."""
    if not (home / "guardian.db").is_file():
        raise StateError(f"{home}: no state here yet (nothing to check)")
    artifacts = ArtifactStore(home)
    with StateStore(home) as store:
        found = _database(store)
        if not found[0].ok:
            return found
        stale = store.runs.mark_stale()
        if stale:
            found.append(Finding("runs", f"{stale} run(s) whose process died: interrupted", True))
        swept = artifacts.sweep()
        if swept:
            found.append(Finding("temp", f"removed {swept} leftover(s) of dead processes", True))
        found += _artifacts(artifacts)
        found += _champions(store)
    return found
