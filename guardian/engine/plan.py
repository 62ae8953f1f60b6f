"""`guardian plan`: what a run would do now — trigger verdict and, per skill, cache hit or run."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile, TriggerPolicy
from guardian.core.gitutil import changed_lines, head_commit, head_tree_sha
from guardian.engine.keys import KeyWalk, model_skill
from guardian.steps import get_step
from guardian.store.artifacts import ArtifactStore, Health
from guardian.store.state import StateStore


class PlannedStep(BaseModel):
    """One skill of the plan: its step, cache key (when knowable) and whether it would run."""

    skill: str
    step: str
    key: str | None
    action: str  # reuse | run
    note: str = ""


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


def _trigger(
    repo: Path, commit: str, last: dict[str, Any] | None, policy: TriggerPolicy
) -> tuple[bool, str, int | None]:
    """The trigger policy's verdict for HEAD: (run?, why, changed lines since the last run)."""
    if last is None:
        return True, "no successful run yet for this repo", None
    if last["commit_sha"] == commit:
        return False, "HEAD is the commit of the last successful run", None
    n_changed = changed_lines(repo, last["commit_sha"], policy.paths)
    started = datetime.fromisoformat(last["started_at"]).timestamp()
    waited = (time.time() - started) / 60
    if n_changed < policy.min_changed_lines:
        reason = f"{n_changed} changed lines < min_changed_lines {policy.min_changed_lines}"
        return False, reason, n_changed
    if waited < policy.min_interval_minutes:
        return False, f"last run {waited:.0f} min ago < min_interval_minutes", n_changed
    return True, f"{n_changed} changed lines since {last['commit_sha'][:7]}", n_changed


def make_plan(
    config: GuardianConfig, skills: SkillsFile, repo: Path, playbook_name: str | None = None
) -> Plan:
    """Predict a run without doing it: trigger policy verdict and cache hits per skill.

    Keys come from the same walk the runner takes; after the first skill that would run,
    later keys depend on outputs not yet made, so they are shown as unknown.
    """
    repo = repo.expanduser().resolve()
    name = playbook_name or config.default_playbook
    playbook = skills.playbook(name)
    head_tree_sha(repo)
    commit = head_commit(repo)
    artifacts = ArtifactStore(config.home)
    with StateStore(config.home) as store:
        repo_id = store.db.repo_id(repo)
        last = store.runs.last(repo_id) if repo_id is not None else None
        train_skill = model_skill(skills, playbook)
        champ = store.registry.champion(repo_id, train_skill) if repo_id and train_skill else None

    should, reason, n_changed = _trigger(repo, commit, last, playbook.trigger)
    walk = KeyWalk(config, skills, commit, champ)
    steps: list[PlannedStep] = []
    blind = False
    for position, skill_name in enumerate(playbook.skills):
        if blind:
            spec = get_step(skills.skills[skill_name].step)
            steps.append(PlannedStep(skill=skill_name, step=spec.name, key=None, action="run"))
            continue
        ks = walk.keyed(position, skill_name)
        health = artifacts.check(ks.key)
        if health is Health.OK:
            path = artifacts.path(ks.key)
            walk.record(ks.spec.provides, path, artifacts.meta(ks.key)["digest"], ks.key)
            action = "reuse"
        else:
            blind, action = True, "run"
        note = "cached artifact is damaged: it will be rebuilt" if health is Health.DAMAGED else ""
        steps.append(
            PlannedStep(skill=skill_name, step=ks.spec.name, key=ks.key, action=action, note=note)
        )
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
