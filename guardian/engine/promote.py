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

import structlog

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.engine.publish import Placed, Release, publish
from guardian.engine.report.document import write_report
from guardian.engine.resolve import run_model
from guardian.engine.runner import repo_lock
from guardian.errors import ConfigError, StateError
from guardian.store.records import Override, RunRecord, RunStatus
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Promoted:
    """What `promote_run` did: where the model now lives, and the override if one was used."""

    run_id: str
    path: Path
    override: Override | None
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
        run = store.runs.require(run_id)
        with repo_lock(config.home, Path(run.repo_path)):
            return _promote(config, skills, store, run, force, reason)


def _promote(
    config: GuardianConfig,
    skills: SkillsFile,
    store: StateStore,
    run: RunRecord,
    force: bool,
    reason: str | None,
) -> Promoted:
    gate = run.gate
    passed = gate is not None and gate.passed
    if not passed and not force:
        fails = [r for r in gate.reasons if r.startswith("FAIL")] if gate else []
        why = "; ".join(fails) or "no gate decision"
        raise StateError(
            f"run {run.id} did not pass its gate ({why}): "
            "pass --force --reason TEXT to promote it anyway"
        )
    model = run_model(store, skills, run.id)
    assert model.skill is not None and model.artifact_key is not None and model.model_dir
    champ = store.registry.champion(run.repo_id, model.skill)
    if champ is not None and champ.artifact_key == model.artifact_key:
        return Promoted(run.id, Path(champ.path), champ.override, already=True)
    override = None
    if not passed:
        override = Override(
            by=who(), reason=reason, at=datetime.now(UTC).isoformat(timespec="seconds")
        )
    release = Release(
        repo_id=run.repo_id,
        repo_name=run.repo_name,
        skill=model.skill,
        run_id=run.id,
        artifact_key=model.artifact_key,
        model_dir=model.model_dir,
        metrics=(run.evaluation or {}).get("challenger") or {},
        override=override,
    )
    placed = publish(config, store, skills, release)
    if override is not None:
        log.warning("promotion forced past the gate", run=run.id, **override.model_dump())
    how = "by override" if override else "by hand"
    result = run.result.model_copy(
        update={
            "status": RunStatus.SUCCEEDED,
            "promoted_path": str(placed.path),
            "override": override,
            "note": f"promoted {how} to {placed.where()}",
            "talk": placed.talk(run.repo_path),
        }
    )
    store.runs.finish(run.id, result)
    write_report(store, run.id)
    return Promoted(run.id, placed.path, override, placed=placed, repo=run.repo_path)
