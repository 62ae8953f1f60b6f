"""`guardian plan` and the daemon give one verdict for one repo state (engine.plan.verdict)."""

from __future__ import annotations

from pathlib import Path

import yaml

from guardian.config.settings import load_config
from guardian.daemon.decide import decide_job
from guardian.engine.change import event_of
from guardian.engine.plan import make_plan
from guardian.steps import load_skills
from guardian.store.records import Decision, JobPayload, RunResult, RunStatus
from guardian.store.state import StateStore
from tests.engine.test_runner import write_setup
from tests.helpers_git import commit_files, make_git_repo

CODE = "def f{n}(x):\n    return x + {n}\n\n"


def _source(functions: int) -> str:
    return "".join(CODE.format(n=n) for n in range(functions))


def _finished(store: StateStore, repo_id: int, commit: str, passed: bool) -> str:
    run_id = store.runs.start(repo_id, "demo", commit)
    gate = Decision(passed=passed, reasons=["PASS x" if passed else "FAIL x"])
    store.runs.finish(run_id, RunResult(status=RunStatus.SUCCEEDED, gate=gate))
    return run_id


def _both(config: Path, repo: Path, reason: str) -> tuple[tuple[bool, str], tuple[bool, str]]:
    """(plan's verdict, the daemon's verdict) for a job queued with `reason`."""
    cfg = load_config(config)
    skills = load_skills(cfg.skills_path)
    plan = make_plan(cfg, skills, repo, "demo", event=event_of(reason))
    payload = JobPayload(reasons=[f"2026-12-07T00:00:00+00:00 {reason}"])
    daemon = decide_job(cfg.home, skills, repo.resolve(), "demo", payload)
    return (plan.should_trigger, plan.trigger_reason), daemon


def test_plan_and_daemon_agree_including_head_already_ran(
    tmp_path: Path, tiny_base: Path, guardian_home: Path
) -> None:
    config = write_setup(tmp_path, tiny_base)
    skills_file = tmp_path / "skills.yaml"
    doc = yaml.safe_load(skills_file.read_text())
    doc["playbooks"]["demo"]["trigger"] = {"events": ["commit"], "min_changed_lines": 5}
    skills_file.write_text(yaml.safe_dump(doc))
    git_repo = make_git_repo(tmp_path / "app", {"app/core.py": _source(2)})
    repo = tmp_path / "app"
    first = str(git_repo.head.commit.hexsha)
    with StateStore(guardian_home) as store:
        repo_id = store.db.ensure_repo(repo, "app")
        champion_run = _finished(store, repo_id, first, passed=True)
        store.registry.promote(repo_id, "train-lora", champion_run, "k1", tmp_path, "b", {})

    second = commit_files(git_repo, {"app/core.py": _source(12)}, "many new functions")
    plan, daemon = _both(config, repo, "hook:post-commit")
    assert plan == daemon and plan[0] is True
    assert f"since {first[:7]}" in plan[1]

    # The run at `second` failed its gate: the champion is still at `first`, so the change
    # since the model in service is as large as before, but that HEAD has had its run.
    with StateStore(guardian_home) as store:
        failed_run = _finished(store, repo_id, second, passed=False)
    plan, daemon = _both(config, repo, "hook:post-commit")
    assert plan == daemon == (False, f"HEAD {second[:7]} already ran (run {failed_run})")

    plan, daemon = _both(config, repo, "cli")  # asked for by hand: runs again
    assert plan == daemon == (True, "asked for by hand")

    commit_files(git_repo, {"app/util.py": _source(1)}, "small")  # 5 lines: enough
    plan, daemon = _both(config, repo, "hook:post-commit")
    assert plan == daemon and plan[0] is True and f"since {first[:7]}" in plan[1]
