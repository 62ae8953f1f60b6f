"""The explicit step registry: name -> StepSpec. skills.yaml may also name `module:function`."""

from __future__ import annotations

import importlib
from pathlib import Path

from pydantic import ValidationError

from guardian.config import skills as skills_config
from guardian.config.skills import SkillsFile
from guardian.core.yamlfile import validation_problems
from guardian.errors import ConfigError
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

__all__ = [
    "StepContext",
    "StepParams",
    "StepResult",
    "StepSpec",
    "check_skills",
    "get_step",
    "load_skills",
    "step_names",
]

_BUILTIN_MODULES = ("mine", "synthesize", "validate", "train", "evaluate")


def _builtin() -> dict[str, StepSpec]:  # type: ignore[type-arg]
    specs: dict[str, StepSpec] = {}  # type: ignore[type-arg]
    for mod_name in _BUILTIN_MODULES:
        mod = importlib.import_module(f"guardian.steps.{mod_name}")
        spec = mod.SPEC
        specs[spec.name] = spec
    return specs


def step_names() -> list[str]:
    """Names of the built-in steps, in pipeline order."""
    return list(_builtin())


def get_step(ref: str) -> StepSpec:  # type: ignore[type-arg]
    """Resolve a built-in step name or a `module:attr` reference to a user StepSpec."""
    builtin = _builtin()
    if ref in builtin:
        return builtin[ref]
    if ":" in ref:
        mod_name, _, attr = ref.partition(":")
        try:
            obj = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"step '{ref}': cannot import ({exc})") from exc
        if not isinstance(obj, StepSpec):
            raise ConfigError(f"step '{ref}': is not a guardian StepSpec")
        return obj
    known = ", ".join(sorted(builtin))
    raise ConfigError(f"unknown step '{ref}' (known: {known}, or module:attr)")


def check_skills(doc: SkillsFile, label: str, declared: set[str]) -> list[str]:
    """Problems validation of single fields cannot see: unknown skills/steps, bad params, wiring."""
    problems: list[str] = []
    specs = {}
    for name, skill in doc.skills.items():
        try:
            spec = get_step(skill.step)
        except ConfigError as exc:
            problems.append(f"{label}: skills.{name}.step: {exc}")
            continue
        specs[name] = spec
        try:
            spec.params.model_validate(skill.params)
        except ValidationError as exc:
            problems.extend(validation_problems(label, exc, prefix=f"skills.{name}.params"))
    for pb_name, pb in doc.playbooks.items():
        provided: set[str] = set()
        blind = False
        for i, skill_name in enumerate(pb.skills):
            where = f"{label}: playbooks.{pb_name}.skills.{i}"
            if skill_name not in declared:
                known = ", ".join(sorted(declared))
                problems.append(f"{where}: unknown skill '{skill_name}' (defined: {known})")
                blind = True
                continue
            found = specs.get(skill_name)
            if found is None:
                blind = True
                continue
            spec = found
            missing = [k for k in spec.needs if k not in provided]
            if missing and not blind:
                problems.append(
                    f"{where}: skill '{skill_name}' needs {', '.join(missing)} "
                    "but no earlier skill in the playbook provides it"
                )
            provided.add(spec.provides)
    return problems


def load_skills(path: Path) -> SkillsFile:
    """Load skills.yaml with every step checked too: unknown steps, bad params, wiring."""
    return skills_config.load_skills(path, check=check_skills)
