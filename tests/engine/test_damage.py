"""Damaged cached artifacts are never trusted: the run quarantines and rebuilds them, and says
so; `guardian doctor` finds them (and missing champions) across the whole state dir."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from guardian.store.artifacts import META_NAME, dir_digest
from tests.engine.test_runner import ROOT, run, write_setup


def _step(outcome, skill: str):  # noqa: ANN001, ANN202
    return next(s for s in outcome.steps if s.skill == skill)


def _doctor(guardian_home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "guardian", "doctor"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_damaged_artifacts_are_rebuilt_and_reported(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    config = write_setup(tmp_path, tiny_base, max_steps=4)
    first = run(config, demo_repo)
    assert first.status == "succeeded"

    # a truncated train.jsonl must not be silently built upon
    synth = _step(first, "synthesize").path
    train_file = synth / "train.jsonl"
    train_file.write_bytes(train_file.read_bytes()[:100])
    second = run(config, demo_repo)
    assert _step(second, "synthesize").status == "ran"
    assert _step(second, "validate").status == "cached"  # same rebuilt input, same key
    assert any("synthesize" in w and "damaged" in w for w in second.warnings), second.warnings
    assert dir_digest(synth) == json.loads((synth / META_NAME).read_text())["digest"]
    report = json.loads((second.report_dir / "report.json").read_text())
    assert report["warnings"] == second.warnings
    assert "warning: synthesize" in (second.report_dir / "report.md").read_text()

    # a deleted adapter must not pass as "already the champion"
    model = _step(second, "train-lora").path
    (model / "adapter" / "adapter_model.safetensors").unlink()
    third = run(config, demo_repo)
    assert _step(third, "train-lora").status == "ran"
    assert (model / "adapter" / "adapter_model.safetensors").is_file()

    # a deleted chunks.jsonl must not fail every later run
    mined = _step(third, "mine").path
    (mined / "chunks.jsonl").unlink()
    fourth = run(config, demo_repo)
    assert fourth.status == "succeeded" and _step(fourth, "mine").status == "ran"
    assert (mined / "chunks.jsonl").is_file()
    quarantined = sorted(
        p.name.split(".")[0] for p in (guardian_home / "artifacts" / ".quarantine").iterdir()
    )
    keys = {_step(first, s).key for s in ("synthesize", "train-lora", "mine")}
    assert set(quarantined) == keys


def test_doctor_checks_artifacts_runs_and_champions(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    config = write_setup(tmp_path, tiny_base, max_steps=4, margin=0.0)
    first = run(config, demo_repo)
    assert first.promoted_path is not None
    healthy = _doctor(guardian_home)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "integrity ok" in healthy.stdout and "champion of demo-repo" in healthy.stdout

    validate = _step(first, "validate").path
    (validate / "card.json").write_text("{}")
    debris = guardian_home / "artifacts" / ("f" * 64)
    debris.mkdir()
    proc = _doctor(guardian_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{_step(first, 'validate').key[:12]}: damaged" in proc.stdout
    assert f"{'f' * 12}: incomplete" in proc.stdout
    assert not validate.exists() and not debris.exists()

    (first.promoted_path / "adapter" / "adapter_config.json").write_text("{}")
    proc = _doctor(guardian_home)
    assert proc.returncode == 1
    assert "changed since promotion" in proc.stdout
    assert proc.stderr.strip() == "error: 1 problem(s) need attention (listed above)"
