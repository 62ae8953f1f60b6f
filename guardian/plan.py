"""`guardian plan`: what a run would do now — trigger verdict and, per skill, cache hit or run."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from guardian.artifacts import ArtifactStore, dir_digest
from guardian.config import GuardianConfig
from guardian.pipeline import (
    comparable_champion,
    head_commit,
    model_skill,
    resolve_params,
    step_key,
)
from guardian.skills import SkillsFile
from guardian.state import StateStore
from guardian.steps import get_step


class PlannedStep(BaseModel):
    """One skill of the plan: its step, cache key (when knowable) and whether it would run."""

    skill: str
    step: str
    key: str | None
    action: str  # reuse | run


class Plan(BaseModel):
    """The plan for one repo+playbook."""

    repo: str
    playbook: str
    commit: str
    last_commit: str | None
    changed_lines: int | None
    should_trigger: bool
    trigger_reason: str
    steps: list[PlannedStep]


def changed_lines(repo: Path, since: str, paths: list[str]) -> int:
    """Lines added plus removed between `since` and HEAD, optionally limited to path globs."""
    from guardian.steps.mine import open_repo

    args = ["--numstat", f"{since}..HEAD"]
    if paths:
        args += ["--", *[f":(glob){p}" for p in paths]]
    total = 0
    with open_repo(repo) as handle:
        diff = handle.git.diff(*args)
    for line in diff.splitlines():
        added, removed, *_ = line.split("\t")
        total += int(added) if added.isdigit() else 0
        total += int(removed) if removed.isdigit() else 0
    return total


def make_plan(
    config: GuardianConfig, skills: SkillsFile, repo: Path, playbook_name: str | None = None
) -> Plan:
    """Predict a run without doing it: trigger policy verdict and cache hits per skill."""
    from guardian.steps.mine import head_tree_sha

    repo = repo.expanduser().resolve()
    name = playbook_name or config.default_playbook
    playbook = skills.playbook(name)
    head_tree_sha(repo)
    commit = head_commit(repo)
    home = config.home
    artifacts = ArtifactStore(home)
    with StateStore(home) as store:
        repo_id = store.repo_id(repo)
        last = store.last_run(repo_id) if repo_id is not None else None
        train_skill = model_skill(skills, playbook)
        champ = store.champion(repo_id, train_skill) if repo_id and train_skill else None

    policy = playbook.trigger
    n_changed: int | None = None
    if last is None:
        should, reason = True, "no successful run yet for this repo"
    elif last["commit_sha"] == commit:
        should, reason = False, "HEAD is the commit of the last successful run"
    else:
        n_changed = changed_lines(repo, last["commit_sha"], policy.paths)
        started = datetime.fromisoformat(last["started_at"]).timestamp()
        waited = (time.time() - started) / 60
        if n_changed < policy.min_changed_lines:
            should = False
            reason = f"{n_changed} changed lines < min_changed_lines {policy.min_changed_lines}"
        elif waited < policy.min_interval_minutes:
            should = False
            reason = f"last run {waited:.0f} min ago < min_interval_minutes"
        else:
            should, reason = True, f"{n_changed} changed lines since {last['commit_sha'][:7]}"

    produced: dict[str, tuple[str, str]] = {}  # kind -> (digest, key)
    steps: list[PlannedStep] = []
    blind = False
    for skill_name in playbook.skills:
        skill = skills.skills[skill_name]
        spec = get_step(skill.step)
        key: str | None = None
        if not blind:
            params = resolve_params(spec, skill, config)
            digests = {kind: produced[kind][0] for kind in spec.needs}
            if "baseline" in spec.optional_needs and champ and "model" in produced:
                champ_path = Path(champ["path"])
                model_dir = artifacts.path(produced["model"][1])
                if champ["artifact_key"] != produced["model"][1] and comparable_champion(
                    champ_path, model_dir
                ):
                    digests["baseline"] = dir_digest(champ_path)
            key = step_key(spec, params, digests, commit, home)
        if key is not None and artifacts.exists(key):
            produced[spec.provides] = (artifacts.meta(key)["digest"], key)
            steps.append(PlannedStep(skill=skill_name, step=spec.name, key=key, action="reuse"))
        else:
            blind = True
            steps.append(PlannedStep(skill=skill_name, step=spec.name, key=key, action="run"))
    return Plan(
        repo=str(repo),
        playbook=name,
        commit=commit,
        last_commit=last["commit_sha"] if last else None,
        changed_lines=n_changed,
        should_trigger=should,
        trigger_reason=reason,
        steps=steps,
    )
