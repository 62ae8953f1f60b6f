"""Checking a config.yaml and its skills.yaml whole, for `guardian validate` and any other door.

Every problem is collected, one line each naming its file and field, so a user fixes them
all in one pass; nothing is loaded beyond the two files (a GGUF base is located, not
converted).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from guardian.config.settings import GuardianConfig, find_config, load_config
from guardian.config.skills import SkillsFile, config_problems, default_skills_path
from guardian.errors import ConfigError, ModelError
from guardian.ml.base_model import resolve_base
from guardian.steps import load_skills

__all__ = ["CheckResult", "check_config", "skills_path_of"]


class CheckResult(BaseModel):
    """What a check found: every problem, and a line for each file that checked out ok."""

    model_config = ConfigDict(extra="forbid")

    problems: list[str] = Field(default_factory=list)
    skills_ok: str | None = None  # "<skills path>: ok (N skills, M playbooks)"
    config_ok: str | None = None  # "<config path>: ok", only when there is no problem at all
    config: GuardianConfig | None = Field(default=None, exclude=True)  # as loaded, when it did
    skills: SkillsFile | None = Field(default=None, exclude=True)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return not self.problems

    def raise_problems(self) -> None:
        """Raise one ConfigError carrying every problem, if there is any."""
        if self.problems:
            raise ConfigError(self.problems[0], self.problems)


def skills_path_of(cfg: GuardianConfig) -> Path:
    """The skills file a config means: the one it names, or the packaged one when the config
    is the built-in default and names none that exists."""
    path = cfg.skills_path
    if not path.exists() and cfg.source is None:
        path = default_skills_path()
    return path


def check_config(config_path: Path | None, skills_path: Path | None) -> CheckResult:
    """Check the config (found as `load_config` finds it) and the skills file (`skills_path`,
    else the config's): fields, the base model, playbook names; every problem at once."""
    result = CheckResult()
    cfg = None
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        result.problems += exc.problems or [str(exc)]
    label = cfg.source.name if cfg is not None and cfg.source else "config"
    if cfg is not None:
        result.problems += _base_problems(cfg, label)
    skills_file = skills_path or (skills_path_of(cfg) if cfg else None)
    if skills_file is not None:
        try:
            doc = load_skills(skills_file)
            result.skills = doc
            result.skills_ok = (
                f"{skills_file}: ok ({len(doc.skills)} skills, {len(doc.playbooks)} playbooks)"
            )
            if cfg is not None:
                repos = [(r.path, r.playbook) for r in cfg.repos]
                result.problems += config_problems(label, repos, cfg.default_playbook, doc)
        except ConfigError as exc:
            result.problems += exc.problems or [str(exc)]
    if cfg is not None and not result.problems:
        result.config_ok = f"{find_config(config_path) or 'config (defaults)'}: ok"
    return result.model_copy(update={"config": cfg})


def _base_problems(cfg: GuardianConfig, label: str) -> list[str]:
    """The base model must resolve locally, and be a GGUF/alias when Ollama is the target."""
    try:
        ref = resolve_base(cfg.base_model, cfg.home, convert=False)
    except ModelError as exc:
        return [f"{label}: base_model: {exc}"]
    if cfg.promote.target == "ollama" and ref.kind not in ("alias", "gguf"):
        return [
            f"{label}: promote.target: ollama needs a GGUF or alias base_model "
            f"(the export takes its tokenizer from the base's GGUF; got {ref.kind})"
        ]
    return []
