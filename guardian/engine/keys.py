"""Cache keys of a playbook's skills: the one key walk that both the runner and the plan use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from guardian.config.settings import GuardianConfig
from guardian.config.skills import Playbook, SkillDef, SkillsFile
from guardian.core.versions import distribution_versions
from guardian.steps import StepParams, StepSpec, get_step
from guardian.store.artifacts import cache_key, dir_digest
from guardian.store.records import ModelRecord

log = structlog.get_logger(__name__)


def resolve_params(spec: StepSpec, skill: SkillDef, config: GuardianConfig) -> StepParams:  # type: ignore[type-arg]
    """Validate a skill's params for its step, filling the config's base model by default."""
    raw = dict(skill.params)
    if "base" in spec.params.model_fields and "base" not in raw:
        raw["base"] = config.base_model
    return spec.params.model_validate(raw)


def step_key(
    spec: StepSpec,  # type: ignore[type-arg]
    params: StepParams,
    input_digests: dict[str, str],
    repo_rev: str | None,
    home: Path,
) -> str:
    """The cache key of a step: name, version, the params that shape its output, input digests,
    HEAD commit if used, and the versions of the libraries it declares."""
    return cache_key(
        {
            "step": spec.name,
            "version": spec.version,
            "params": params.model_dump(mode="json", exclude=set(spec.unkeyed)),
            "libraries": distribution_versions(spec.libraries),
            "inputs": input_digests,
            "repo_rev": repo_rev if spec.uses_repo else None,
            "extra": spec.extra_key(params, home) if spec.extra_key else None,
        }
    )


def model_skill(skills: SkillsFile, playbook: Playbook) -> str | None:
    """The playbook's skill that produces a model (its champion is tracked per this name)."""
    for name in playbook.skills:
        if get_step(skills.skills[name].step).provides == "model":
            return name
    return None


def _fingerprint(model_dir: Path) -> str | None:
    try:
        return str(json.loads((model_dir / "base.json").read_text())["fingerprint"])
    except (OSError, ValueError, KeyError):
        return None


def usable_champion(champion_dir: Path, challenger_dir: Path) -> bool:
    """Whether the champion can be scored as the baseline: its files are on disk.

    A champion on another base is still the baseline (the evaluate step compares it on the
    tokenizer-free metrics); one whose files are gone is judged by its recorded metrics
    (the runner), never silently replaced by the untrained base.
    """
    if not champion_dir.is_dir():
        log.warning("champion_missing_on_disk", path=str(champion_dir))
        return False
    if _fingerprint(champion_dir) != _fingerprint(challenger_dir):
        log.warning("champion_on_other_base", path=str(champion_dir))
    return True


@dataclass
class KeyedSkill:
    """One skill of a playbook with its step, params, input dirs and digests, and cache key."""

    position: int
    name: str
    spec: StepSpec  # type: ignore[type-arg]
    params: StepParams
    inputs: dict[str, Path]
    digests: dict[str, str]
    key: str


@dataclass
class KeyWalk:
    """Walks a playbook's skills in order; each key depends on what earlier skills produced.

    `champion` is the repo's champion record for the playbook's model skill (or None): an
    evaluate step gets it as its baseline when it is on disk, on the same base, and not the
    very model this run produced.
    """

    config: GuardianConfig
    skills: SkillsFile
    commit: str
    champion: ModelRecord | None = None
    # artifact kind -> (artifact dir, content digest, cache key) of the latest skill providing it
    produced: dict[str, tuple[Path, str, str]] = field(default_factory=dict)

    def keyed(self, position: int, name: str) -> KeyedSkill:
        """The next skill's step, params, inputs and cache key, given what was produced so far."""
        skill = self.skills.skills[name]
        spec = get_step(skill.step)
        params = resolve_params(spec, skill, self.config)
        inputs = {kind: self.produced[kind][0] for kind in spec.needs}
        digests = {kind: self.produced[kind][1] for kind in spec.needs}
        model = self.produced.get("model")
        champ = self.champion
        if "baseline" in spec.optional_needs and champ and model is not None:
            champ_path = Path(champ.path)
            if champ.artifact_key != model[2] and usable_champion(champ_path, model[0]):
                inputs["baseline"] = champ_path
                digests["baseline"] = dir_digest(champ_path)
        key = step_key(spec, params, digests, self.commit, self.config.home)
        return KeyedSkill(position, name, spec, params, inputs, digests, key)

    def record(self, kind: str, path: Path, digest: str, key: str) -> None:
        """Note the artifact a skill produced (or reused), for the keys of later skills."""
        self.produced[kind] = (path, digest, key)
