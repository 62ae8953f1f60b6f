"""Promotion to Ollama end to end, on the in-process double through the real client: an
unreachable Ollama leaves the run `promotion_pending`; a SIGKILL mid-upload changes no tag;
`guardian promote` then publishes the exported GGUF as `<repo>:latest`; a second model moves
the first to `:prev`, and `guardian rollback` restores its exact digest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from guardian.config.settings import load_config
from guardian.engine.promote import promote_run
from guardian.errors import TargetUnavailable
from guardian.export.gguf import write_gguf
from guardian.serving.ollama import file_digest
from guardian.steps import load_skills
from guardian.store.state import StateStore
from tests.engine.test_runner import run, write_setup
from tests.export.test_gguf import SHIPPED
from tests.polling import wait_for
from tests.serving.ollama_double import OllamaDouble

NAME = "demo-repo"


def _config(tmp_path: Path, tiny_base: Path, host: str, max_steps: int) -> Path:
    gguf_base = tmp_path / "tiny-base.gguf"
    if not gguf_base.exists():
        write_gguf(tiny_base, SHIPPED, gguf_base, quant="f32")
    path = write_setup(tmp_path, gguf_base, max_steps=max_steps, margin=0.0)
    cfg = yaml.safe_load(path.read_text())
    cfg["promote"] = {"target": "ollama", "ollama": {"host": host, "timeout_seconds": 20}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "guardian", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_promote_to_ollama_pending_kill_retry_then_rollback(
    tmp_path: Path,
    tiny_base: Path,
    demo_repo: Path,
    guardian_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OllamaDouble() as gone:
        dead = gone.host
    config_path = _config(tmp_path, tiny_base, dead, max_steps=4)
    first = run(config_path, demo_repo)
    assert first.decision is not None and first.decision.passed, first.decision
    assert first.status == "promotion_pending" and "not reachable" in first.note
    with StateStore(guardian_home) as store:
        assert store.registry.champions() == []
        assert store.runs.get(first.run_id).status == "promotion_pending"
    cfg = load_config(config_path)
    skills = load_skills(cfg.skills_path)

    with OllamaDouble() as double:
        monkeypatch.setenv("OLLAMA_HOST", double.host)  # beats promote.ollama.host
        env = {**os.environ}
        double.upload_delay = 60.0
        cmd = [sys.executable, "-m", "guardian", "promote", first.run_id, "--config"]
        proc = subprocess.Popen([*cmd, str(config_path)], env=env)
        try:
            wait_for(
                lambda: any(m == "POST" and "/api/blobs/" in p for m, p in double.requests),
                "the blob upload to start",
                120,
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        double.upload_delay = 0.0
        assert double.digest_of(f"{NAME}:latest") is None and not double.manifests
        with StateStore(guardian_home) as store:
            assert store.registry.champions() == []

        done = promote_run(cfg, skills, first.run_id)
        assert done.placed is not None and done.placed.ollama is not None
        exported = guardian_home / "exports"
        (gguf,) = exported.glob("*-f16.gguf")
        assert double.model_blob(f"{NAME}:latest") == file_digest(gguf)
        first_digest = double.digest_of(f"{NAME}:latest")
        assert first_digest == done.placed.ollama.digest
        assert double.digest_of(f"{NAME}:{first.run_id.lower()}") == first_digest
        with StateStore(guardian_home) as store:
            (champ,) = store.registry.champions()
            assert store.runs.get(first.run_id).status == "succeeded"
        assert champ.placement.digest == first_digest
        report = json.loads((first.report_dir / "report.json").read_text())
        assert report["ollama"]["name"] == NAME and report["status"] == "succeeded"

        second_config = _config(tmp_path / "two", tiny_base, dead, max_steps=6)
        second = run(second_config, demo_repo)
        assert second.decision is not None
        if second.decision.passed:
            assert second.talk == f"ollama run {NAME}", second.note
        else:  # no better than the first: promoted by hand, as a user would
            promote_run(cfg, skills, second.run_id, force=True, reason="a second version")
        assert double.digest_of(f"{NAME}:prev") == first_digest
        second_digest = double.digest_of(f"{NAME}:latest")
        assert second_digest not in (None, first_digest)

        listed = _cli("models", "--config", str(config_path), env=env)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.strip().splitlines()
        assert len(lines) == 2 and all(f"ollama {NAME}:" in line for line in lines)
        assert "champion" in lines[0] and second.run_id in lines[0]

        back = _cli("rollback", NAME, "--config", str(config_path), env=env)
        assert back.returncode == 0, back.stderr
        assert double.digest_of(f"{NAME}:latest") == first_digest
        assert double.digest_of(f"{NAME}:prev") == second_digest
        with StateStore(guardian_home) as store:
            (champ,) = store.registry.champions()
        assert champ.run_id == first.run_id

        double.stop()
        again = _cli("rollback", NAME, "--config", str(config_path), env=env)
        assert again.returncode == 3 and "not reachable" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1
    with pytest.raises(TargetUnavailable):
        promote_run(cfg, skills, second.run_id, force=True, reason="x")
