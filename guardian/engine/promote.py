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
from guardian.core.fsutil import atomic_write_text
from guardian.core.jsonl import write_json
from guardian.engine.keys import model_skill
from guardian.engine.report.document import load_report, reports_dir
from guardian.engine.report.html import render_html
from guardian.engine.report.markdown import render_markdown
from guardian.engine.runner import repo_lock
from guardian.errors import ConfigError, StateError
from guardian.serving.local import promote_local
from guardian.store.artifacts import ArtifactStore
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Promoted:
    """What `promote_run` did: where the model now lives, and the override if one was used."""

    run_id: str
    path: Path
    override: dict[str, Any] | None
    already: bool = False


def who() -> str:
    """The person (user@host) a forced promotion is recorded against."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def run_model(home: Path, skills: SkillsFile, rep: dict[str, Any]) -> tuple[str, str, Path]:
    """The model a run trained: its skill, artifact key and dir (which must still exist)."""
    run_id = str(rep["run_id"])
    playbook = skills.playbooks.get(str(rep["playbook"]))
    if playbook is None:
        raise ConfigError(f"playbook '{rep['playbook']}' of run {run_id} is not in skills.yaml")
    skill = model_skill(skills, playbook)
    step = next((s for s in rep.get("steps", []) if s.get("skill") == skill), None)
    if skill is None or step is None:
        raise StateError(f"run {run_id}: produced no model")
    key = str(step["key"])
    model_dir = ArtifactStore(home).path(key)
    if not (model_dir / "adapter").is_dir():
        raise StateError(f"run {run_id}: its model {model_dir} is gone (run it again)")
    return skill, key, model_dir


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
    path = promote_local(
        store=store,
        models_dir=config.models_dir,
        repo_id=repo_id,
        repo_name=str(rep["repo_name"]),
        skill=skill,
        run_id=run_id,
        artifact_key=key,
        model_dir=model_dir,
        metrics=rep.get("challenger") or {},
        override=override,
    )
    if override is not None:
        log.warning("promotion forced past the gate", run=run_id, **override)
    _record(config.home, rep, path, override)
    return Promoted(run_id, path, override)


def _record(home: Path, rep: dict[str, Any], path: Path, override: dict[str, Any] | None) -> None:
    """Write the promotion (and any override) into the run's report and its two views."""
    rep = {**rep, "promoted_path": str(path), "override": override}
    how = "by override" if override else "by hand"
    rep["note"] = f"promoted {how} to {path}"
    out = reports_dir(home) / str(rep["run_id"])
    write_json(out / "report.json", rep)
    atomic_write_text(out / "report.md", render_markdown(rep))
    atomic_write_text(out / "report.html", render_html(rep))
