"""Putting a model that passed its gate into service, on the configured target.

Every promoted model is copied into the local models dir and recorded as the champion (the
next run's baseline, and what `guardian ask` serves). With `promote.target: ollama` it is
first exported as a merged GGUF and tagged in Ollama; only when that has succeeded does the
registry change, so an unreachable Ollama leaves both the registry and Ollama as they were
and the run waits as `promotion_pending`. Rollback swaps champion and previous in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.engine.exporting import export_gguf
from guardian.errors import ConfigError, StateError
from guardian.serving.local import promote_local
from guardian.serving.ollama import (
    OllamaTarget,
    Published,
    chat_format,
    gguf_chat_template,
    model_name,
)
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Release:
    """A trained model about to be promoted, and whose it is."""

    repo_id: int
    repo_name: str
    skill: str
    run_id: str
    artifact_key: str
    model_dir: Path
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Placed:
    """Where a promoted model now lives: its local dir, and its Ollama tags if any."""

    path: Path
    ollama: Published | None = None

    def where(self) -> str:
        """One line for notes and the CLI."""
        if self.ollama is not None:
            return f"ollama {self.ollama.host} {self.ollama.ref} (and {self.path})"
        return str(self.path)

    def talk(self, repo: Path | str) -> str:
        """The command a user types to ask the promoted model something."""
        return talk_command(self.ollama.placement() if self.ollama else None, repo)


def talk_command(placement: dict[str, Any] | None, repo: Path | str) -> str:
    """`ollama run NAME` for a model published to Ollama, else `guardian ask REPO ...`."""
    if placement and placement.get("target") == "ollama":
        return f"ollama run {placement['name']}"
    return f'guardian ask {repo} "Where is ... defined?"'


def publish(
    config: GuardianConfig,
    store: StateStore,
    skills: SkillsFile,
    release: Release,
    override: dict[str, Any] | None = None,
) -> Placed:
    """Publish to the configured target, then record the champion; raises TargetUnavailable
    (nothing changed) when Ollama cannot take it."""
    published = None
    if config.promote.target == "ollama":
        published = _to_ollama(config, skills, release)
    path = promote_local(
        store=store,
        models_dir=config.models_dir,
        repo_id=release.repo_id,
        repo_name=release.repo_name,
        skill=release.skill,
        run_id=release.run_id,
        artifact_key=release.artifact_key,
        model_dir=release.model_dir,
        metrics=release.metrics,
        override=override,
        placement=published.placement() if published is not None else None,
    )
    return Placed(path, published)


def export_for_ollama(
    config: GuardianConfig, skills: SkillsFile, model_dir: Path, artifact_key: str
) -> Path:
    """The model's merged GGUF in the configured quant, written once per model artifact."""
    quant = config.promote.ollama.quant
    dest = config.home / "exports" / f"{artifact_key[:16]}-{quant}.gguf"
    if dest.is_file():
        return dest
    return export_gguf(config, model_dir, model_dir.resolve().name, quant=quant, out=dest)


def _to_ollama(config: GuardianConfig, skills: SkillsFile, release: Release) -> Published:
    gguf = export_for_ollama(config, skills, release.model_dir, release.artifact_key)
    fmt = chat_format(gguf_chat_template(gguf))
    ollama = config.promote.ollama
    target = OllamaTarget(config.promote.ollama_host(), ollama.timeout_seconds)
    name = model_name(ollama.name, release.repo_name, release.skill)
    published = target.publish(gguf, name, release.run_id.lower(), fmt)
    log.info("promoted", target="ollama", model=published.ref, digest=published.digest[:19])
    return published


def rollback(config: GuardianConfig, name: str) -> dict[str, Any]:
    """Make the previous model the champion again, in the registry and (when it was
    published there) in Ollama; `name` is a repo name or an Ollama model name."""
    with StateStore(config.home) as store:
        champ = _champion_named(store, name)
        prev = store.registry.previous(int(champ["repo_id"]), str(champ["skill"]))
        if prev is None:
            raise StateError(f"{name}: no previous model to roll back to")
        placement = champ.get("placement") or {}
        if placement.get("target") == "ollama":
            before = prev.get("placement") or {}
            if before.get("target") != "ollama":
                raise StateError(f"{name}: the previous model was never published to Ollama")
            target = OllamaTarget(str(placement["host"]), config.promote.ollama.timeout_seconds)
            target.rollback(str(placement["name"]), want_prev=str(before["digest"]))
        elif not Path(str(prev["path"])).is_dir():
            raise StateError(f"{name}: the previous model's files are gone ({prev['path']})")
        return store.registry.rollback(int(champ["repo_id"]), str(champ["skill"]))


def _champion_named(store: StateStore, name: str) -> dict[str, Any]:
    champions = [
        m
        for m in store.registry.models()
        if m["status"] == "champion"
        and (m["repo_name"] == name or (m.get("placement") or {}).get("name") == name)
    ]
    if not champions:
        raise ConfigError(f"{name}: no promoted model by that repo or Ollama name")
    if len(champions) > 1:
        skills = ", ".join(str(m["skill"]) for m in champions)
        raise ConfigError(f"{name}: several champions ({skills}); use the Ollama name")
    return champions[0]
