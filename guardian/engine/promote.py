"""Promoting a finished run by hand: `guardian promote RUN_ID [--force --reason TEXT]`.

A run whose gate passed but was not promoted (promotion disabled, target unavailable) is
promoted as it stands. A run whose gate failed is promoted only with `--force` and a
non-empty reason; who forced it, why and when are recorded on the model's row in state and
in the run's report, so an override is never silent.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.engine.exporting import run_model
from guardian.engine.publish import Placed, Release, publish
from guardian.engine.report.document import load_report, write_views
from guardian.engine.runner import repo_lock
from guardian.errors import ConfigError, StateError
from guardian.store.runs import RunStatus
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Promoted:
    """What `promote_run` did: where the model now lives, and the override if one was used."""

    run_id: str
    path: Path
    override: dict[str, Any] | None
    already: bool = False
    placed: Placed | None = None
    repo: str = ""


def who() -> str:
    """The person (user@host) a forced promotion is recorded against."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def promote_run(
    config: GuardianConfig,
    skills: SkillsFile,
    run_id: str,
    *,
    force: bool = False,
    reason: str | None = None,
) -> Promoted:
    """Make a finished run's model the champion; a failed gate needs `force` and a reason."""
    reason = (reason or "").strip() or None
    if force and reason is None:
        raise ConfigError("--force needs --reason TEXT: say why the gate is overridden")
    with StateStore(config.home) as store:
        rep = load_report(config.home, run_id, store)
        repo = Path(rep["repo"])
        with repo_lock(config.home, repo):
            return _promote(config, skills, store, rep, force, reason)


def _promote(
    config: GuardianConfig,
    skills: SkillsFile,
    store: StateStore,
    rep: dict[str, Any],
    force: bool,
    reason: str | None,
) -> Promoted:
    run_id = str(rep["run_id"])
    decision = rep.get("decision") or {}
    passed = bool(decision.get("passed"))
    if not passed and not force:
        why = "; ".join(r for r in decision.get("reasons", []) if r.startswith("FAIL")) or (
            "no gate decision"
        )
        raise StateError(
            f"run {run_id} did not pass its gate ({why}): "
            "pass --force --reason TEXT to promote it anyway"
        )
    skill, key, model_dir = run_model(config.home, skills, rep)
    row = store.runs.get(run_id)
    if row is None:
        raise StateError(f"run {run_id}: not in the state at {config.home}")
    repo_id = int(row["repo_id"])
    champ = store.registry.champion(repo_id, skill)
    if champ is not None and champ["artifact_key"] == key:
        return Promoted(run_id, Path(champ["path"]), champ.get("override"), already=True)
    override = None
    if not passed:
        override = {
            "by": who(),
            "reason": reason,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "gate_passed": False,
        }
    release = Release(
        repo_id=repo_id,
        repo_name=str(rep["repo_name"]),
        skill=skill,
        run_id=run_id,
        artifact_key=key,
        model_dir=model_dir,
        metrics=rep.get("challenger") or {},
    )
    placed = publish(config, store, skills, release, override)
    if override is not None:
        log.warning("promotion forced past the gate", run=run_id, **override)
    if row["status"] == RunStatus.PROMOTION_PENDING:
        store.runs.finish(run_id, RunStatus.SUCCEEDED, "pass", row.get("report_path"))
    _record(config.home, rep, placed, override)
    return Promoted(run_id, placed.path, override, placed=placed, repo=str(rep["repo"]))


def _record(
    home: Path, rep: dict[str, Any], placed: Placed, override: dict[str, Any] | None
) -> None:
    """Write the promotion (and any override) into the run's report and its two views."""
    rep = {**rep, "promoted_path": str(placed.path), "override": override}
    rep["status"] = "succeeded"
    if placed.ollama is not None:
        rep["ollama"] = placed.ollama.placement()
    how = "by override" if override else "by hand"
    rep["note"] = f"promoted {how} to {placed.where()}"
    write_views(home, rep)
