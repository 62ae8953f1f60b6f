"""Putting a model that passed its gate into service, on the configured target.

Every promoted model ends in the local models dir, recorded as the champion (the next run's
baseline, and what `guardian ask` serves). A configured target other than `local` (Ollama)
takes it first; only when that has succeeded does the registry change, so an unreachable
Ollama leaves both the registry and Ollama as they were and the run waits as
`promotion_pending`. Rollback has the target the champion is served from undo its placement,
then swaps champion and previous in the registry. Targets come from
guardian/serving/targets.py by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.engine.exporting import export_gguf
from guardian.errors import ConfigError, StateError
from guardian.serving.base import Placement, Release
from guardian.serving.local import LOCAL, LocalTarget
from guardian.serving.ollama import OLLAMA, GgufFor
from guardian.serving.targets import TargetNeeds, build_target
from guardian.store.records import ModelRecord, ModelStatus
from guardian.store.state import StateStore

__all__ = ["Placed", "Release", "export_for_ollama", "publish", "rollback", "talk_command"]

DISABLED = "none"


@dataclass(frozen=True)
class Placed:
    """Where a promoted model now lives: its local dir, and where else a target put it."""

    path: Path
    elsewhere: Placement | None = None

    @property
    def ollama(self) -> Placement | None:
        """The Ollama placement, if the model went there."""
        if self.elsewhere is not None and self.elsewhere.target == OLLAMA:
            return self.elsewhere
        return None

    def where(self) -> str:
        """One line for notes and the CLI."""
        if self.ollama is not None:
            return f"ollama {self.ollama.host} {self.ollama.name}:latest (and {self.path})"
        return str(self.path)

    def talk(self, repo: Path | str) -> str:
        """The command a user types to ask the promoted model something."""
        return talk_command(self.elsewhere, repo)


def talk_command(placement: Placement | None, repo: Path | str) -> str:
    """`ollama run NAME` for a model published to Ollama, else `guardian ask REPO ...`."""
    if placement is not None and placement.target == OLLAMA:
        return f"ollama run {placement.name}"
    return f'guardian ask {repo} "Where is ... defined?"'


def publish(
    config: GuardianConfig,
    store: StateStore,
    skills: SkillsFile,
    release: Release,
) -> Placed:
    """Publish to the configured target, then record the champion locally; raises
    TargetUnavailable (nothing changed) when the target cannot take it."""
    name = config.promote.target
    elsewhere = None
    if name not in (LOCAL, DISABLED):  # `none` stops automatic promotion, not this one
        needs = TargetNeeds(config, store, _gguf_for(config, skills))
        elsewhere = build_target(name, needs).promote(release)
    local = LocalTarget(store, config.models_dir).promote(release, elsewhere)
    return Placed(Path(local.name), elsewhere)


def export_for_ollama(
    config: GuardianConfig, skills: SkillsFile, model_dir: Path, artifact_key: str
) -> Path:
    """The model's merged GGUF in the configured quant, written once per model artifact."""
    quant = config.promote.ollama.quant
    dest = config.home / "exports" / f"{artifact_key[:16]}-{quant}.gguf"
    if dest.is_file():
        return dest
    return export_gguf(config, model_dir, model_dir.resolve().name, quant=quant, out=dest)


def _gguf_for(config: GuardianConfig, skills: SkillsFile) -> GgufFor:
    def gguf(release: Release) -> Path:
        return export_for_ollama(config, skills, release.model_dir, release.artifact_key)

    return gguf


def rollback(config: GuardianConfig, name: str) -> ModelRecord:
    """Make the previous model the champion again, on the target it is served from and in
    the registry; `name` is a repo name or an Ollama model name."""
    with StateStore(config.home) as store:
        champ = _champion_named(store, name)
        repo_id, skill = champ.repo_id, champ.skill
        prev = store.registry.previous(repo_id, skill)
        if prev is None:
            raise StateError(f"{name}: no previous model to roll back to")
        current = _placements(champ)[-1]
        before = next((p for p in _placements(prev) if p.target == current.target), None)
        build_target(current.target, TargetNeeds(config, store)).rollback(current, before)
        return store.registry.rollback(repo_id, skill)


def _placements(model: ModelRecord) -> list[Placement]:
    """Where a registry record says its model is: the local dir, then the target it was
    published to, if any (the last is where it is served from)."""
    local = Placement(target=LOCAL, name=model.path, tag=model.run_id, digest=model.digest or "")
    return [local, model.placement] if model.placement is not None else [local]


def _champion_named(store: StateStore, name: str) -> ModelRecord:
    champions = [
        m
        for m in store.registry.models()
        if m.status == ModelStatus.CHAMPION
        and (
            m.repo_name == name or any(p.name == name for p in _placements(m) if p.target != LOCAL)
        )
    ]
    if not champions:
        raise ConfigError(f"{name}: no promoted model by that repo or Ollama name")
    if len(champions) > 1:
        skills = ", ".join(m.skill for m in champions)
        raise ConfigError(f"{name}: several champions ({skills}); use the Ollama name")
    return champions[0]
