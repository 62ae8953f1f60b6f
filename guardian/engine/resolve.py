"""Which model a user means: a run id, a train output dir, a repo's champion, or the base.

One resolution for every door: `guardian export`, `promote`, `ask --model`, and the API's
model names all come through `resolve_model`, reading the state (never a report file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.engine.keys import model_skill
from guardian.errors import ConfigError, ModelError, StateError
from guardian.ml.adapters import is_model_dir
from guardian.store.artifacts import ArtifactStore
from guardian.store.db import RUN_ID
from guardian.store.state import StateStore

ModelKind = Literal["run", "dir", "champion", "base"]


class ResolvedModel(BaseModel):
    """A model to load: its train output dir (None for the untrained base) and a label."""

    kind: ModelKind
    model_dir: Path | None
    name: str
    run_id: str | None = None
    skill: str | None = None
    artifact_key: str | None = None


def run_model(store: StateStore, skills: SkillsFile, run_id: str) -> ResolvedModel:
    """The model a run trained, from its steps in the state; its files must still exist."""
    run = store.runs.require(run_id)
    playbook = skills.playbooks.get(run.playbook)
    if playbook is None:
        raise ConfigError(f"playbook '{run.playbook}' of run {run_id} is not in skills.yaml")
    skill = model_skill(skills, playbook)
    step = next((s for s in store.runs.steps(run_id) if s.skill == skill), None)
    if skill is None or step is None or not step.artifact_key:
        raise StateError(f"run {run_id}: produced no model")
    model_dir = ArtifactStore(store.home).path(step.artifact_key)
    if not is_model_dir(model_dir):
        raise StateError(f"run {run_id}: its model {model_dir} is gone (run it again)")
    return ResolvedModel(
        kind="run",
        model_dir=model_dir,
        name=f"{run.repo_name}-{run_id}",
        run_id=run_id,
        skill=skill,
        artifact_key=step.artifact_key,
    )


def champion_model(
    store: StateStore, skills: SkillsFile, repo: Path, playbook_name: str
) -> ResolvedModel:
    """The model in service for a repo and the playbook's training skill."""
    skill = model_skill(skills, skills.playbook(playbook_name))
    repo_id = store.db.repo_id(repo)
    champ = store.registry.champion(repo_id, skill) if repo_id and skill else None
    if champ is None:
        raise ModelError(
            f"{repo}: no champion model yet for playbook '{playbook_name}' "
            "(run `guardian run-once` first, or pass --model base)"
        )
    return ResolvedModel(
        kind="champion",
        model_dir=Path(champ.path),
        name=f"champion:{champ.run_id}",
        run_id=champ.run_id,
        skill=skill,
        artifact_key=champ.artifact_key,
    )


def resolve_model(
    config: GuardianConfig,
    skills: SkillsFile,
    spec: str,
    repo: Path | None = None,
    playbook: str | None = None,
) -> ResolvedModel:
    """`spec` is a run id, a train output dir, "champion" (of `repo`) or "base"."""
    if spec == "base":
        return ResolvedModel(kind="base", model_dir=None, name=f"base:{config.base_model}")
    if spec == "champion":
        if repo is None:
            raise ConfigError("model 'champion' needs the repo whose champion it is")
        with StateStore(config.home) as store:
            return champion_model(store, skills, repo, playbook or config.default_playbook)
    if RUN_ID.fullmatch(spec):
        with StateStore(config.home) as store:
            return run_model(store, skills, spec)
    path = Path(spec).expanduser()
    if not is_model_dir(path):
        raise ModelError(f"{path}: not a run id, nor a model dir (no adapter/adapter_config.json)")
    return ResolvedModel(kind="dir", model_dir=path, name=path.resolve().name)
