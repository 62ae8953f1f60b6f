"""skills.yaml: named skills (a step plus default params) and playbooks that chain them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardian.errors import ConfigError
from guardian.gate import GateConfig
from guardian.yamlfile import read_yaml, validation_problems

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SkillDef(_Strict):
    """A named, reusable step invocation: which step and its default params."""

    step: str
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


TriggerEvent = Literal["commit", "schedule", "manual"]


class TriggerPolicy(_Strict):
    """When the daemon runs a playbook: how much change, how often, on which paths."""

    events: list[TriggerEvent] = Field(default_factory=lambda: list[TriggerEvent](["commit"]))
    min_changed_lines: int = Field(default=1, ge=0)
    min_interval_minutes: float = Field(default=0, ge=0)
    paths: list[str] = Field(default_factory=list)


class Playbook(_Strict):
    """An ordered list of skills, the trigger policy, the gate and whether to promote."""

    description: str = ""
    skills: list[str] = Field(min_length=1)
    trigger: TriggerPolicy = Field(default_factory=TriggerPolicy)
    gate: GateConfig = Field(default_factory=GateConfig)
    promote: bool = True


class SkillsFile(_Strict):
    """The whole skills.yaml document."""

    version: Literal[1] = 1
    skills: dict[str, SkillDef]
    playbooks: dict[str, Playbook]
    source: Path | None = Field(default=None, exclude=True)

    def playbook(self, name: str) -> Playbook:
        """The named playbook, or a ConfigError listing the ones that exist."""
        try:
            return self.playbooks[name]
        except KeyError:
            known = ", ".join(sorted(self.playbooks)) or "none"
            raise ConfigError(f"unknown playbook '{name}' (defined: {known})") from None


def _cross_check(doc: SkillsFile, label: str, declared: set[str]) -> list[str]:
    """Problems validation of single fields cannot see: unknown skills/steps, bad params, wiring."""
    from guardian.steps import get_step

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


def default_skills_path() -> Path:
    """The skills.yaml shipped beside the package (used when config names none that exists)."""
    return PACKAGE_ROOT / "skills" / "skills.yaml"


def _parse_entries(
    data: dict[str, Any], section: str, model: type[_Strict], label: str, problems: list[str]
) -> dict[str, Any]:
    """Validate each entry of a top-level mapping on its own so one bad entry hides no other."""
    raw = data.get(section)
    if not isinstance(raw, dict):
        what = "is missing" if raw is None else "expected a mapping"
        problems.append(f"{label}: {section}: {what}")
        return {}
    parsed = {}
    for name, body in raw.items():
        try:
            parsed[str(name)] = model.model_validate(body if body is not None else {})
        except ValidationError as exc:
            problems.extend(validation_problems(label, exc, prefix=f"{section}.{name}"))
    return parsed


def load_skills(path: Path) -> SkillsFile:
    """Load skills.yaml and check it whole; every problem is reported at once."""
    label = path.name
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping with 'skills' and 'playbooks'")
    problems: list[str] = []
    for key in sorted(set(data) - {"version", "skills", "playbooks"}):
        problems.append(f"{label}: {key}: unknown field")
    if data.get("version", 1) != 1:
        problems.append(f"{label}: version: expected 1 (got {data.get('version')!r})")
    skills = _parse_entries(data, "skills", SkillDef, label, problems)
    playbooks = _parse_entries(data, "playbooks", Playbook, label, problems)
    doc = SkillsFile(skills=skills, playbooks=playbooks)
    raw_skills = data.get("skills")
    declared = {str(k) for k in raw_skills} if isinstance(raw_skills, dict) else set()
    problems.extend(_cross_check(doc, label, declared))
    raw_playbooks = data.get("playbooks")
    for pb_name, body in (raw_playbooks if isinstance(raw_playbooks, dict) else {}).items():
        names = body.get("skills") if isinstance(body, dict) else None
        if str(pb_name) in playbooks or not isinstance(names, list):
            continue
        for i, skill_name in enumerate(names):
            if isinstance(skill_name, str) and skill_name not in declared:
                problems.append(
                    f"{label}: playbooks.{pb_name}.skills.{i}: unknown skill '{skill_name}' "
                    f"(defined: {', '.join(sorted(declared))})"
                )
    if problems:
        raise ConfigError(problems[0], problems)
    doc.source = path.resolve()
    return doc
