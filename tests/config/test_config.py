"""Every shipped YAML loads and validates; bad configs give one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.config.settings import GuardianConfig, load_config
from guardian.errors import ConfigError
from guardian.steps import load_skills

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIGS = [ROOT / "config.yaml", ROOT / "examples" / "demo-config.yaml"]
SHIPPED_SKILLS = [ROOT / "skills" / "skills.yaml", ROOT / "examples" / "demo-skills.yaml"]


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.skills_path.is_file()
    load_skills(cfg.skills_path)


@pytest.mark.parametrize("path", SHIPPED_SKILLS, ids=lambda p: p.name)
def test_shipped_skills_validate(path: Path) -> None:
    doc = load_skills(path)
    assert doc.playbooks


def test_home_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("state_dir: state\n")
    monkeypatch.delenv("GUARDIAN_HOME")
    assert load_config(cfg_file).home == (tmp_path / "state").resolve()
    monkeypatch.setenv("GUARDIAN_HOME", str(tmp_path / "env"))
    assert load_config(cfg_file).home == (tmp_path / "env").resolve()
    monkeypatch.delenv("GUARDIAN_HOME")
    assert GuardianConfig().home == Path.home() / ".local" / "share" / "guardian"


def _problems(tmp_path: Path, text: str, name: str = "config.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        if name == "config.yaml":
            load_config(path)
        else:
            load_skills(path)
    return info.value.problems or [str(info.value)]


def test_config_errors_name_their_yaml_path(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path, "log:\n  level: loud\npromote:\n  target: cloud\nrepos: 3\nbogus: 1\n"
    )
    assert (
        "config.yaml: log.level: expected 'debug', 'info', 'warning' or 'error' (got 'loud')"
        in problems
    )
    assert any(p.startswith("config.yaml: promote.target: expected") for p in problems)
    assert "config.yaml: repos: expected a list" in problems
    assert "config.yaml: bogus: unknown field" in problems


def test_missing_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")
    assert _problems(tmp_path, "log: [unclosed\n")[0].startswith(
        "config.yaml: invalid YAML at line 2"
    )
    assert _problems(tmp_path, "- a\n- b\n") == ["config.yaml: expected a mapping at the top level"]


GOOD_SKILLS = """
version: 1
skills:
  mine: {step: mine}
  synth: {step: synthesize}
  train: {step: train, params: {max_steps: 5}}
  eval: {step: evaluate}
playbooks:
  retrain:
    skills: [mine, synth, train, eval]
    gate: {min_margin: 0.05}
"""


def test_good_skills_file(tmp_path: Path) -> None:
    path = tmp_path / "skills.yaml"
    path.write_text(GOOD_SKILLS)
    doc = load_skills(path)
    assert doc.playbook("retrain").skills == ["mine", "synth", "train", "eval"]
    with pytest.raises(ConfigError, match="unknown playbook 'nope' \\(defined: retrain\\)"):
        doc.playbook("nope")


def test_skills_errors_are_all_reported_at_once(tmp_path: Path) -> None:
    bad = (
        GOOD_SKILLS.replace("max_steps: 5", "max_steps: -3")
        .replace("min_margin: 0.05", "min_margin: lots")
        .replace("[mine, synth, train, eval]", "[mine, synth, trian, eval]")
        .replace("eval: {step: evaluate}", "eval: {step: evaluate}\n  odd: {step: frobnicate}")
    )
    problems = _problems(tmp_path, bad, "skills.yaml")
    assert (
        "skills.yaml: playbooks.retrain.gate.min_margin: expected a number (got 'lots')" in problems
    )
    assert "skills.yaml: skills.train.params.max_steps: must be >= 0" in problems
    assert any(
        p.startswith("skills.yaml: playbooks.retrain.skills.2: unknown skill 'trian'")
        for p in problems
    )
    assert any(
        p.startswith("skills.yaml: skills.odd.step: unknown step 'frobnicate'") for p in problems
    )
    assert len(problems) == 4


def test_playbook_wiring_is_checked(tmp_path: Path) -> None:
    text = GOOD_SKILLS.replace("[mine, synth, train, eval]", "[mine, train, eval]")
    problems = _problems(tmp_path, text, "skills.yaml")
    assert problems == [
        "skills.yaml: playbooks.retrain.skills.1: skill 'train' needs dataset "
        "but no earlier skill in the playbook provides it",
        "skills.yaml: playbooks.retrain.skills.2: skill 'eval' needs dataset "
        "but no earlier skill in the playbook provides it",
    ]


def test_unknown_param_is_reported(tmp_path: Path) -> None:
    text = GOOD_SKILLS.replace("max_steps: 5", "max_stepz: 5")
    assert _problems(tmp_path, text, "skills.yaml") == [
        "skills.yaml: skills.train.params.max_stepz: unknown field"
    ]
