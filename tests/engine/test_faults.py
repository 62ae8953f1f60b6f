"""Fault injection: SIGKILL a real run at every step boundary and mid-step, for each step.

A champion is promoted at commit A; a run for commit B is killed at one point; then a normal
run for B must succeed with no stuck lock, no damaged artifact reused, the champion intact,
and artifacts identical to those of an undisturbed run for B.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardian.config.settings import load_config
from guardian.engine.runner import Pipeline
from guardian.steps import load_skills
from guardian.store.state import StateStore
from tests.engine.test_runner import write_setup
from tests.helpers_git import commit_files, make_git_repo

SKILLS = ("mine", "synthesize", "validate", "train-lora", "evaluate")
STEP_OF = {"train-lora": "train"}
POINTS = ("start", "during", "computed", "committed")
# The default suite kills mid-step in every step plus one boundary at each end of the run;
# the other 13 points run under `-m faults` (and `make test-all`).
DEFAULT_CASES = {(s, "during") for s in SKILLS} | {("mine", "start"), ("evaluate", "committed")}
CASES = [
    pytest.param(s, p, marks=() if (s, p) in DEFAULT_CASES else pytest.mark.faults)
    for s in SKILLS
    for p in POINTS
]


def _module(i: int, extra: str = "") -> str:
    return (
        f'"""Module {i}: helpers for kind {i}."""\n\n\n'
        f"def add_{i}(a: int, b: int = {i}) -> int:\n"
        f'    """Return the sum of a and b plus {i}, for the fault tests."""\n'
        f"    return a + b + {i}\n\n\n"
        f"class Box{i}:\n"
        f'    """A box that holds one value of kind {i}."""\n\n'
        f"    def get(self) -> int:\n"
        f'        """Return the value stored in the box."""\n'
        f"        return {i}\n{extra}"
    )


def _run(config: Path, repo: Path) -> Any:
    cfg = load_config(config)
    pipe = Pipeline(cfg, load_skills(cfg.skills_path))
    try:
        return pipe.run_once(repo)
    finally:
        pipe.close()


def _artifacts(outcome: Any) -> dict[str, tuple[str, str]]:
    """skill -> (cache key, content fingerprint). Train is compared on its adapter weights and
    evaluate on content only: train's loss log records wall-clock time, so its artifact digest,
    and with it evaluate's key, differs between any two trainings of the same model."""
    found = {}
    for step in outcome.steps:
        if step.skill == "train-lora":
            weights = step.path / "adapter" / "adapter_model.safetensors"
            found[step.skill] = (step.key, hashlib.sha256(weights.read_bytes()).hexdigest())
        else:
            meta = json.loads((step.path / "_artifact.json").read_text())
            key = "" if step.skill == "evaluate" else step.key
            found[step.skill] = (key, meta["digest"])
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> dict[str, Any]:
    """Home with a champion at commit A and the repo at commit B; B's undisturbed artifacts."""
    root = tmp_path_factory.mktemp("faults")
    home, pristine = root / "home", root / "pristine"
    repo = root / "repo"
    git_repo = make_git_repo(repo, {f"pkg/mod{i}.py": _module(i) for i in range(8)})
    config = write_setup(root, tiny_base, max_steps=6, margin=0.0)
    old = os.environ.get("GUARDIAN_HOME")
    os.environ["GUARDIAN_HOME"] = str(home)
    try:
        first = _run(config, repo)
        assert first.status == "succeeded" and first.promoted_path is not None
        commit_files(git_repo, {"pkg/mod9.py": _module(9)}, "commit B")
        shutil.copytree(home, pristine, symlinks=True)
        reference = _run(config, repo)
        assert reference.status == "succeeded"
    finally:
        if old is None:
            os.environ.pop("GUARDIAN_HOME", None)
        else:
            os.environ["GUARDIAN_HOME"] = old
    return {
        "home": home,
        "pristine": pristine,
        "repo": repo,
        "config": config,
        "champion": first.promoted_path,
        "reference": _artifacts(reference),
    }


@pytest.mark.parametrize(("skill", "point"), CASES)
def test_kill_then_rerun_recovers(
    world: dict[str, Any], skill: str, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    home: Path = world["home"]
    shutil.rmtree(home)
    shutil.copytree(world["pristine"], home, symlinks=True)
    monkeypatch.setenv("GUARDIAN_HOME", str(home))
    name = STEP_OF.get(skill, skill) if point == "during" else skill
    env = {**os.environ, "GUARDIAN_FAULT": f"{point}:{name}"}
    cmd = [sys.executable, "-m", "guardian", "run-once", str(world["repo"])]
    cmd += ["--config", str(world["config"])]
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, f"the fault point was not reached: {killed.stderr[-2000:]}"
    if (skill, point) == ("train-lora", "computed"):  # trained, not yet committed
        assert list((home / "checkpoints").glob("*.pt")), "checkpoint gone before the commit"

    with StateStore(home) as store:  # the champion from commit A is untouched by the kill
        champs = store.registry.champions()
    assert [Path(c.path) for c in champs] == [world["champion"]]
    assert (world["champion"] / "adapter" / "adapter_model.safetensors").is_file()

    rerun = _run(world["config"], world["repo"])  # a stuck lock would raise StateError here
    assert rerun.status == "succeeded"
    assert _artifacts(rerun) == world["reference"]
    assert not rerun.warnings, rerun.warnings
    assert not list((home / "artifacts" / ".tmp").iterdir())
    assert not list(home.rglob(".*.tmp")), list(home.rglob(".*.tmp"))
    with StateStore(home) as store:
        statuses = [r.status for r in store.runs.recent(limit=3)]
        champs = store.registry.champions()
    assert statuses == ["succeeded", "interrupted", "succeeded"]
    assert len(champs) == 1 and Path(champs[0].path).is_dir()


def _processes_with_env(marker: str) -> list[int]:
    """Pids of live processes whose environment holds `marker` (e.g. GUARDIAN_HOME=...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ")[-1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_sigkill_during_pooled_mining_leaves_no_workers_and_no_lock(
    tmp_path: Path, guardian_home: Path
) -> None:
    files = {f"pkg/m{i:03d}.py": _module(i) for i in range(120)}
    repo = tmp_path / "repo"
    make_git_repo(repo, files)
    skills = {
        "skills": {
            "mine": {"step": "mine", "params": {"workers": 2, "parallel_min_bytes": 0}},
        },
        "playbooks": {"mine-only": {"skills": ["mine"]}},
    }
    (tmp_path / "skills.yaml").write_text(yaml.safe_dump(skills))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"skills_file": "skills.yaml", "default_playbook": "mine-only"})
    )
    marker = f"GUARDIAN_TEST_RUN={uuid.uuid4().hex}"  # only the killed run and its children
    env = {**os.environ, "GUARDIAN_FAULT": "during:mine", **dict([marker.split("=")])}
    cmd = [sys.executable, "-m", "guardian", "run-once", str(repo), "--config", str(config)]
    # output to a file, not a pipe: orphaned workers holding a pipe would hang the test
    with (tmp_path / "killed.log").open("w") as log:
        killed = subprocess.run(cmd, env=env, stdout=log, stderr=log, timeout=300)
    assert killed.returncode == -9, (tmp_path / "killed.log").read_text()[-2000:]
    deadline = time.time() + 20
    while time.time() < deadline and _processes_with_env(marker):
        time.sleep(0.05)
    left = {pid: _cmdline(pid) for pid in _processes_with_env(marker)}
    assert not left, f"processes outlived the killed run: {left}"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "another run is in progress" not in again.stderr
    with StateStore(guardian_home) as store:
        assert [r.status for r in store.runs.recent()] == ["succeeded", "interrupted"]
