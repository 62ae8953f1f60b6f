"""The whole loop on a real git repo with a tiny real model: run, cache, gate, report, resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from guardian.config.settings import load_config
from guardian.engine.plan import make_plan
from guardian.engine.runner import Pipeline
from guardian.steps import load_skills
from guardian.store.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, env={**os.environ, **GIT_ENV})


def write_setup(tmp_path: Path, base: Path, max_steps: int = 12, margin: float = 0.05) -> Path:
    """A config + skills pair for the tiny model; returns the config path."""
    skills = yaml.safe_load((ROOT / "examples" / "demo-skills.yaml").read_text())
    skills["skills"]["train-lora"]["params"].update(
        max_steps=max_steps, batch_size=4, max_len=160, learning_rate=0.003, checkpoint_every=2
    )
    skills["skills"]["evaluate"]["params"].update(
        em_items=2,
        max_new_tokens=8,
        max_len=160,
        probe_per_kind=2,
        probe_max_new_tokens=8,
        guard_items=4,
        ask_per_kind=1,
        ask_max_new_tokens=8,
    )
    # These tests drive the loop with a tiny random model: the gate decides on perplexity
    # alone (answer quality is gated in tests/evaluation/test_gate.py).
    skills["playbooks"]["demo"]["gate"] = {
        "primary": "perplexity",
        "min_margin": margin,
        "answers": None,
    }
    (tmp_path / "skills.yaml").write_text(yaml.safe_dump(skills))
    cfg = {
        "skills_file": "skills.yaml",
        "base_model": str(base),
        "default_playbook": "demo",
        "log": {"format": "json", "level": "warning"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(config_path: Path, repo: Path):  # noqa: ANN201
    cfg = load_config(config_path)
    pipe = Pipeline(cfg, load_skills(cfg.skills_path))
    try:
        return pipe.run_once(repo)
    finally:
        pipe.close()


def test_run_once_trains_gates_promotes_then_reuses_everything(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    config_path = write_setup(tmp_path, tiny_base)
    first = run(config_path, demo_repo)
    assert first.status == "succeeded"
    assert [s.status for s in first.steps] == ["ran"] * 5
    chal, base = first.metrics["challenger"], first.metrics["baseline"]
    assert first.metrics["baseline_kind"] == "base"
    assert chal["perplexity"] < base["perplexity"]
    assert first.decision is not None and first.decision.passed, first.decision
    assert first.promoted_path is not None and (first.promoted_path / "adapter").is_dir()

    report = json.loads((first.report_dir / "report.json").read_text())
    assert report["decision"]["passed"] is True
    assert [s["cache"] for s in report["steps"]] == ["miss"] * 5
    md = (first.report_dir / "report.md").read_text()
    assert md.startswith("# Repo Guardian report — PASS")
    assert re.search(r"\| perplexity \| [\d.]+ \[[\d.]+, [\d.]+\] \| [\d.]+ \[[\d.]+, [\d.]+\] "
                     r"\| -[\d.]+ \[-[\d.]+, -[\d.]+\] \| yes \|", md), md  # fmt: skip
    assert "| hallucination_rate |" in md and "| token_f1 |" in md
    assert set(report["challenger"]["ci"]) >= {"perplexity", "probe_open", "hallucination_rate"}
    assert "## Examples (greedy answers on the test split)" in md
    assert len(report["examples"]) == 2 and report["examples"][0]["question"]

    plan = make_plan(load_config(config_path), load_skills(tmp_path / "skills.yaml"), demo_repo)
    assert [s.action for s in plan.steps] == ["reuse"] * 5
    assert plan.should_trigger is False

    t0 = time.time()
    second = run(config_path, demo_repo)
    assert time.time() - t0 < 10
    assert [s.status for s in second.steps] == ["cached"] * 5
    rep2 = json.loads((second.report_dir / "report.json").read_text())
    assert rep2["all_cached"] is True
    assert "already the champion" in second.note
    with StateStore(guardian_home) as store:
        assert [m.status for m in store.registry.models()] == ["champion"]


def test_new_commit_is_judged_against_the_champion(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    config_path = write_setup(tmp_path, tiny_base)
    first = run(config_path, demo_repo)
    assert first.decision is not None and first.decision.passed
    extra = demo_repo / "inventory" / "audit.py"
    extra.write_text(
        '"""Audit helpers."""\n\n\ndef count_lines(text: str) -> int:\n'
        '    """Return how many lines `text` has."""\n    return len(text.splitlines())\n'
    )
    git(demo_repo, "add", "-A")
    git(demo_repo, "commit", "-qm", "audit")
    second = run(config_path, demo_repo)
    assert second.metrics["baseline_kind"] == "champion"
    assert second.steps[0].status == "ran"
    assert second.decision is not None
    assert any("vs champion" in r for r in second.decision.reasons)

    # the champion's files vanish: it is judged by its recorded metrics, never by the raw base
    with StateStore(guardian_home) as store:
        champion = store.registry.champions()[0]
    shutil.rmtree(champion.path)
    extra.write_text(extra.read_text() + "\n\ndef blank(text: str) -> bool:\n    return not text\n")
    git(demo_repo, "commit", "-qam", "blank")
    third = run(config_path, demo_repo)
    assert (
        third.decision is not None and third.decision.baseline_kind == "champion (recorded metrics)"
    )
    assert any("could not be scored" in w for w in third.warnings)
    # the playbook's primary metric is perplexity, which is not comparable from a record
    assert not third.decision.passed
    assert "no champion (recorded metrics) value" in third.decision.reasons[0]


def test_bad_repos_fail_with_one_line(tmp_path: Path, tiny_base: Path) -> None:
    config_path = write_setup(tmp_path, tiny_base)
    plain = tmp_path / "plain"
    plain.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "notes.txt").write_text("no code here\n")
    git(nothing, "init", "-q")
    git(nothing, "add", "-A")
    git(nothing, "commit", "-qm", "notes")
    cases = {
        tmp_path / "missing": "no such directory",
        plain: "not a git repository",
        empty: "has no commits",
        nothing: "no supported source files",
    }
    for repo, expected in cases.items():
        proc = subprocess.run(
            [sys.executable, "-m", "guardian", "run-once", str(repo), "--config", str(config_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 1, (repo, proc.stderr)
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and expected in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_sigkill_during_training_then_rerun_resumes(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    config_path = write_setup(tmp_path, tiny_base, max_steps=60)
    cmd = [
        sys.executable,
        "-m",
        "guardian",
        "run-once",
        str(demo_repo),
        "--config",
        str(config_path),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = guardian_home / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and not list(checkpoints.glob("*.pt")):
        assert proc.poll() is None, "run finished before it could be killed"
        time.sleep(0.05)
    assert list(checkpoints.glob("*.pt")), "no training checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((guardian_home / "artifacts" / ".tmp").iterdir()), "expected debris from the kill"

    rerun = run(config_path, demo_repo)
    assert rerun.status == "succeeded"
    assert [s.status for s in rerun.steps[:3]] == ["cached"] * 3
    assert rerun.steps[3].status == "ran"
    assert rerun.steps[3].metrics["resumed_from"] > 0
    assert not list((guardian_home / "artifacts" / ".tmp").iterdir())
    assert not list(checkpoints.glob("*.pt"))
    with StateStore(guardian_home) as store:
        statuses = [r.status for r in store.runs.recent()]
    assert statuses == ["succeeded", "interrupted"]


def test_repo_lock_reports_only_its_own_acquisition_as_busy(tmp_path: Path) -> None:
    from guardian.engine.runner import repo_lock
    from guardian.errors import LockBusy

    inner = LockBusy(tmp_path / "other.lock", "1")
    with pytest.raises(LockBusy) as raised, repo_lock(tmp_path, tmp_path):
        raise inner  # a busy lock met inside the run is not "another run in progress"
    assert raised.value is inner
    code = (
        "import sys\nfrom pathlib import Path\nfrom guardian.engine.runner import repo_lock\n"
        "with repo_lock(Path(sys.argv[1]), Path(sys.argv[1])): pass\n"
    )
    with repo_lock(tmp_path, tmp_path):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
    assert proc.returncode != 0
    assert f"another run is in progress (pid {os.getpid()})" in proc.stderr


def test_plain_dataset_playbook_runs_to_a_report(
    tmp_path: Path, tiny_base: Path, demo_repo: Path, guardian_home: Path
) -> None:
    # mine -> synthesize (raft: false) -> validate, as a new user would try first
    config_path = write_setup(tmp_path, tiny_base)
    doc = yaml.safe_load((tmp_path / "skills.yaml").read_text())
    doc["skills"]["synthesize"]["params"]["raft"] = False
    doc["playbooks"]["plain"] = {"skills": ["mine", "synthesize", "validate"]}
    (tmp_path / "skills.yaml").write_text(yaml.safe_dump(doc))
    cfg = load_config(config_path)
    pipe = Pipeline(cfg, load_skills(cfg.skills_path))
    try:
        done = pipe.run_once(demo_repo, "plain")
    finally:
        pipe.close()
    assert done.status == "succeeded" and done.decision is None
    md = (done.report_dir / "report.md").read_text()
    assert md.startswith("# Repo Guardian report — NO DECISION") and "no gate decision" in md
    report = json.loads((done.report_dir / "report.json").read_text())
    assert [s["step"] for s in report["steps"]] == ["mine", "synthesize", "validate"]
    card = dict(report["card"])
    assert card["samples kept"].startswith("test ") and "train " in card["samples kept"]
    assert "RAFT samples with the oracle document" not in card
