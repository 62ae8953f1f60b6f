"""`guardian promote RUN_ID`: a failed gate is overridden only with --force and a reason,
and the override is recorded in state and in the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guardian.config.settings import load_config
from guardian.engine.promote import promote_run
from guardian.errors import ConfigError, StateError
from guardian.steps import load_skills
from guardian.store.state import StateStore
from tests.engine.test_runner import run, write_setup


def test_a_failed_gate_is_overridden_only_with_force_and_a_reason(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    config_path = write_setup(tmp_path, tiny_base, max_steps=4, margin=1000.0)
    refused = run(config_path, demo_repo)
    assert refused.decision is not None and not refused.decision.passed
    cfg = load_config(config_path)
    skills = load_skills(cfg.skills_path)
    with StateStore(guardian_home) as store:
        assert store.registry.champions() == []

    with pytest.raises(StateError, match=r"did not pass its gate .*FAIL perplexity.*--force"):
        promote_run(cfg, skills, refused.run_id)
    with pytest.raises(ConfigError, match="--force needs --reason"):
        promote_run(cfg, skills, refused.run_id, force=True, reason="  ")
    with StateStore(guardian_home) as store:
        assert store.registry.champions() == []

    cli = [sys.executable, "-m", "guardian", "promote", refused.run_id, "--config"]
    env = {**os.environ, "GUARDIAN_HOME": str(guardian_home)}
    plain = subprocess.run([*cli, str(config_path)], env=env, capture_output=True, text=True)
    assert plain.returncode != 0 and "--force --reason" in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1, plain.stderr
    forced = subprocess.run(
        [*cli, str(config_path), "--force", "--reason", "hotfix for the demo"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert forced.returncode == 0, forced.stderr
    assert "gate overridden by " in forced.stdout and "hotfix for the demo" in forced.stdout
    done = promote_run(cfg, skills, refused.run_id, force=True, reason="again")
    assert done.already and done.override is not None
    assert done.override.reason == "hotfix for the demo" and "@" in done.override.by
    assert (done.path / "adapter" / "adapter_config.json").is_file()
    with StateStore(guardian_home) as store:
        (champ,) = store.registry.champions()
        assert champ.run_id == refused.run_id
        recorded = store.registry.champion(champ.repo_id, champ.skill)
    assert recorded is not None and recorded.override == done.override
    report = json.loads((refused.report_dir / "report.json").read_text())
    assert report["override"] == done.override.model_dump()
    assert report["promoted_path"] == str(done.path)
    assert report["decision"]["passed"] is False  # the gate's verdict is never rewritten
    md = (refused.report_dir / "report.md").read_text()
    assert md.startswith("# Repo Guardian report — FAIL")
    assert "- **override**: promoted past the failed gate by " in md
    assert "hotfix for the demo" in (refused.report_dir / "report.html").read_text()

    with pytest.raises(StateError, match="not a run id"):
        promote_run(cfg, skills, "nope")
