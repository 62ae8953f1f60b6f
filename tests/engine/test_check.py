"""check_config called directly: a good pair checks out, a broken pair lists every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.config.settings import GuardianConfig
from guardian.config.skills import default_skills_path
from guardian.engine.check import check_config, skills_path_of
from guardian.errors import ConfigError
from guardian.steps import load_skills

ROOT = Path(__file__).resolve().parents[2]
BAD_SKILLS = (
    "skills:\n  train: {step: train, params: {max_steps: -1}}\n"
    "playbooks:\n  retrain:\n    skills: [train, ghost]\n    gate: {min_margin: lots}\n"
)


def test_shipped_pair_checks_out_with_a_line_per_file() -> None:
    config = ROOT / "config.yaml"
    result = check_config(config, None)
    assert result.ok and result.problems == []
    skills = ROOT / "skills" / "skills.yaml"
    doc = load_skills(skills)
    assert result.skills_ok == (
        f"{skills}: ok ({len(doc.skills)} skills, {len(doc.playbooks)} playbooks)"
    )
    assert result.config_ok == f"{config}: ok"
    result.raise_problems()


def test_broken_config_and_skills_list_every_problem_with_its_field(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("log:\n  level: loud\nbogus: 1\n")
    skills = tmp_path / "skills.yaml"
    skills.write_text(BAD_SKILLS)
    result = check_config(config, skills)
    assert result.problems == [
        "config.yaml: log.level: expected 'debug', 'info', 'warning' or 'error' (got 'loud')",
        "config.yaml: bogus: unknown field",
        "skills.yaml: playbooks.retrain.gate.min_margin: expected a number (got 'lots')",
        "skills.yaml: skills.train.params.max_steps: must be >= 0",
        "skills.yaml: playbooks.retrain.skills.1: unknown skill 'ghost' (defined: train)",
    ]
    assert not result.ok and result.skills_ok is None and result.config_ok is None
    with pytest.raises(ConfigError) as info:
        result.raise_problems()
    assert info.value.problems == result.problems and str(info.value) == result.problems[0]


def test_a_loadable_pair_that_disagrees_lists_base_and_playbook_problems(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "skills_file: skills.yaml\ndefault_playbook: nope\nbase_model: /no/such/model\n"
        "repos:\n  - {path: /tmp, playbook: ghost}\n"
    )
    skills = tmp_path / "skills.yaml"
    skills.write_text("skills:\n  mine: {step: mine}\nplaybooks:\n  p: {skills: [mine]}\n")
    result = check_config(config, None)
    assert len(result.problems) == 3, result.problems
    assert result.problems[0].startswith("config.yaml: base_model: base model '/no/such/model'")
    assert result.problems[1:] == [
        "config.yaml: default_playbook: unknown playbook 'nope' (defined: p)",
        "config.yaml: repos.0.playbook: unknown playbook 'ghost' (defined: p)",
    ]
    assert result.skills_ok == f"{skills}: ok (1 skills, 1 playbooks)"
    assert result.config_ok is None


def test_ollama_target_needs_a_gguf_base(tmp_path: Path) -> None:
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "model.safetensors").write_bytes(b"x" * 8)
    config = tmp_path / "config.yaml"
    skills = ROOT / "skills" / "skills.yaml"
    config.write_text(f"base_model: {hf}\nskills_file: {skills}\npromote:\n  target: ollama\n")
    assert check_config(config, None).problems == [
        "config.yaml: promote.target: ollama needs a GGUF or alias base_model (the export "
        "takes its tokenizer from the base's GGUF; got hf_dir)"
    ]
    config.write_text(f"base_model: {hf}\nskills_file: {skills}\n")
    assert check_config(config, None).config_ok == f"{config}: ok"


def test_missing_config_is_one_problem_and_skips_the_skills(tmp_path: Path) -> None:
    result = check_config(tmp_path / "nope.yaml", None)
    assert result.problems == [f"{tmp_path / 'nope.yaml'}: file not found"]
    assert result.skills_ok is None and result.config_ok is None


def test_skills_path_falls_back_to_the_packaged_file_only_for_the_default_config(
    tmp_path: Path,
) -> None:
    default = GuardianConfig(skills_file=str(tmp_path / "absent.yaml"))
    assert skills_path_of(default) == default_skills_path()
    named = default.model_copy()
    named.source = tmp_path / "config.yaml"
    assert skills_path_of(named) == tmp_path / "absent.yaml"
