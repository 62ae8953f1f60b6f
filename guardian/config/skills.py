"""skills.yaml: named skills (a step plus default params) and playbooks that chain them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from guardian.core.schema import StrictModel
from guardian.core.yamlfile import read_yaml, validation_problems
from guardian.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# (parsed document, file label, declared skill names) -> problem lines; the step registry's job
SkillsChecker = Callable[["SkillsFile", str, set[str]], list[str]]


Direction = Literal["higher", "lower"]

# Which way is better for each metric the evaluate step reports; a gate declares any other
# metric it compares under `directions`. Never guessed from a metric's name.
ANSWER_KINDS = ("explain", "howto", "where", "usage", "code")
ANSWER_MODES = ("open", "closed")
METRIC_DIRECTIONS: dict[str, Direction] = {
    "perplexity": "lower",
    "guard_perplexity": "lower",
    "hallucination_rate": "lower",
    "exact_match": "higher",
    "token_f1": "higher",
    "codebleu": "higher",
    "syntax_valid_rate": "higher",
    **{
        f"probe_{mode}{part}": "higher"
        for mode in ("open", "closed")
        for part in ("", "_seen", "_unseen")
    },
    **{f"answers_{mode}": "higher" for mode in ANSWER_MODES},
    **{f"answers_{mode}_{kind}": "higher" for mode in ANSWER_MODES for kind in ANSWER_KINDS},
    **{f"{name}_{mode}": "lower" for name in ("collapse", "invented") for mode in ANSWER_MODES},
}


class AnswerGate(StrictModel):
    """What the answers people get may not lose, whatever the probe gains.

    Per mode (open-book as `guardian ask` asks, closed-book as `ollama run` does): no answer
    kind's score may fall more than `max_kind_drop` (absolute, 0..1) below the baseline's;
    at most `max_collapse` of explain/how-to/code answers may be a bare quote and a token;
    invented identifiers per answer may rise at most `max_invented_rise` over the baseline's.
    """

    modes: list[Literal["open", "closed"]] = Field(default=["open", "closed"], min_length=1)
    max_kind_drop: float = Field(default=0.15, ge=0.0, le=1.0)
    max_collapse: float = Field(default=0.10, ge=0.0, le=1.0)
    max_invented_rise: float = Field(default=0.0, ge=0.0)


class GateConfig(StrictModel):
    """Thresholds of a playbook's gate.

    `min_margin` is the improvement the challenger needs on `primary` over the champion (or
    the untrained base for a repo's first model): relative by default (0.05: 5% better), in
    the metric's own units with `margin: absolute`. `max_regression` bounds how much any
    listed metric may worsen, in absolute units. Every compared metric needs a direction
    (`METRIC_DIRECTIONS` or `directions`). A baseline value that is missing fails its check
    unless `missing_baseline: pass`. With `require_significant`, the margin must also hold at
    the unfavourable end of the paired bootstrap 95% interval of the difference, so a gain
    inside the noise never promotes a model. `max_guard_rise` bounds how much the perplexity
    on the shipped guard set may rise over the baseline's, relative (0.1: 10%): forgetting.
    `min_train_samples` refuses a challenger trained on fewer samples: too little data to
    have learned the repo, whatever its scores on a small test split say. `answers` holds
    the answer-quality bounds (on unless set to null): a probe gain bought by collapsing
    every answer into the probe's shape is refused.
    """

    primary: str = "probe_open"
    min_margin: float = Field(default=0.0, ge=0.0)
    margin: Literal["relative", "absolute"] = "relative"
    floors: dict[str, float] = Field(default_factory=dict)
    ceilings: dict[str, float] = Field(default_factory=dict)
    max_regression: dict[str, float] = Field(default_factory=dict)
    directions: dict[str, Direction] = Field(default_factory=dict)
    missing_baseline: Literal["fail", "pass"] = "fail"
    require_significant: bool = False
    max_guard_rise: float | None = Field(default=None, ge=0.0)
    min_train_samples: int = Field(default=0, ge=0)
    answers: AnswerGate | None = Field(default_factory=AnswerGate)

    @model_validator(mode="after")
    def _directions_known(self) -> GateConfig:
        unknown = sorted(
            m for m in {self.primary, *self.max_regression} if m not in self.all_directions()
        )
        if unknown:
            raise ValueError(
                f"no direction for {', '.join(unknown)}: declare it under directions "
                "as higher or lower"
            )
        return self

    def all_directions(self) -> dict[str, Direction]:
        """The built-in directions with this gate's own declarations on top."""
        return {**METRIC_DIRECTIONS, **self.directions}

    def lower_is_better(self, metric: str) -> bool:
        """Whether a smaller value of `metric` is the better one (it must have a direction)."""
        return self.all_directions()[metric] == "lower"


class SkillDef(StrictModel):
    """A named, reusable step invocation: which step and its default params."""

    step: str
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


TriggerEvent = Literal["commit", "schedule", "manual", "tag"]


class TriggerPolicy(StrictModel):
    """When the daemon runs a playbook: how much change, how often, on which paths.

    A commit (hook or watcher) runs the playbook when the change since the champion's commit
    reaches `min_changed_lines` or `min_changed_functions` and `min_interval_minutes` have
    passed; `schedule` (a 5-field cron line) runs it on a clock; `on_tag` when HEAD is tagged.
    """

    events: list[TriggerEvent] = Field(default_factory=lambda: list[TriggerEvent](["commit"]))
    min_changed_lines: int = Field(default=1, ge=0)
    min_changed_functions: int = Field(default=0, ge=0)
    min_interval_minutes: float = Field(default=0, ge=0)
    schedule: str | None = None
    on_tag: bool = False
    paths: list[str] = Field(default_factory=list)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"expected a 5-field cron line (got {value!r})")
        return value


class Playbook(StrictModel):
    """An ordered list of skills, the trigger policy, the gate and whether to promote."""

    description: str = ""
    skills: list[str] = Field(min_length=1)
    trigger: TriggerPolicy = Field(default_factory=TriggerPolicy)
    gate: GateConfig = Field(default_factory=GateConfig)
    promote: bool = True


class SkillsFile(StrictModel):
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


def default_skills_path() -> Path:
    """The skills.yaml shipped beside the package (used when config names none that exists)."""
    return PACKAGE_ROOT / "skills" / "skills.yaml"


def _parse_entries(
    data: dict[str, Any], section: str, model: type[StrictModel], label: str, problems: list[str]
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


def load_skills(path: Path, check: SkillsChecker | None = None) -> SkillsFile:
    """Load skills.yaml and check it whole; every problem is reported at once.

    `check` adds the problems only the step registry can see (unknown steps, bad params,
    wiring); config never imports steps, so the caller passes it in.
    """
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
    for section in ("skills", "playbooks"):
        if isinstance(data.get(section), dict) and not data[section]:
            problems.append(f"{label}: {section}: must define at least one")
    doc = SkillsFile(skills=skills, playbooks=playbooks)
    raw_skills = data.get("skills")
    declared = {str(k) for k in raw_skills} if isinstance(raw_skills, dict) else set()
    if check is not None:
        problems.extend(check(doc, label, declared))
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


def config_problems(
    config_label: str, repos: list[tuple[str, str]], default: str, doc: SkillsFile
) -> list[str]:
    """Playbook names a config uses that the skills file does not define, one line each."""
    known = ", ".join(sorted(doc.playbooks)) or "none"
    problems = []
    if default not in doc.playbooks:
        problems.append(
            f"{config_label}: default_playbook: unknown playbook '{default}' (defined: {known})"
        )
    for i, (_path, playbook) in enumerate(repos):
        if playbook not in doc.playbooks:
            problems.append(
                f"{config_label}: repos.{i}.playbook: unknown playbook '{playbook}' "
                f"(defined: {known})"
            )
    return problems
