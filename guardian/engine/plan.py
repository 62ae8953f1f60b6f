"""`guardian plan`: what a run would do now — trigger verdict and, per skill, cache hit or run."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.core.gitutil import head_commit, head_tree_sha
from guardian.engine.change import ChangeSummary, Event, change_since, decide
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
    changed_functions: list[str] = []
    commits: int = 0
    changed_files: list[str] = []
    should_trigger: bool
    trigger_reason: str
    steps: list[PlannedStep]


class Verdict(BaseModel):
    """Whether a trigger event would start a run now, why, and the change it measured."""

    run: bool
    reason: str
    event: Event
    change: ChangeSummary


def since_commit(store: StateStore, repo_id: int | None, skill: str | None) -> str | None:
    """The commit the model in service was trained on, else the last successful run's."""
    if repo_id is None:
        return None
    champ = store.registry.champion(repo_id, skill) if skill else None
    if champ is not None:
        run = store.runs.get(champ.run_id)
        if run is not None and run.commit_sha:
            return run.commit_sha
    last = store.runs.last(repo_id)
    return last.commit_sha if last else None


def verdict(
    store: StateStore, skills: SkillsFile, repo: Path, playbook_name: str, event: Event = "commit"
) -> Verdict:
    """Run or not for `event` on the repo as it is now: the one answer `guardian plan` shows
    and the daemon acts on. A HEAD a finished run already took is not run again unless asked
    for by hand; otherwise the playbook's trigger policy decides (engine/change.py)."""
    playbook = skills.playbook(playbook_name)
    repo_id = store.db.repo_id(repo)
    since = since_commit(store, repo_id, model_skill(skills, playbook))
    waited = minutes_since_last_run(store, repo_id)
    finished = ("succeeded", "promotion_pending")
    last = store.runs.last(repo_id, finished) if repo_id is not None else None
    change = change_since(repo, since, playbook.trigger.paths)
    if event != "manual" and last is not None and last.commit_sha == change.head:
        reason = f"HEAD {change.head[:7]} already ran (run {last.id})"
        return Verdict(run=False, reason=reason, event=event, change=change)
    run, reason = decide(change, playbook.trigger, event, waited)
    return Verdict(run=run, reason=reason, event=event, change=change)


def minutes_since_last_run(store: StateStore, repo_id: int | None) -> float | None:
    """Minutes since the repo's last run started (any outcome), None before the first."""
    if repo_id is None:
        return None
    last = store.runs.recent(limit=1, repo_id=repo_id)
    if not last:
        return None
    started = datetime.fromisoformat(last[0].started_at).timestamp()
    return (time.time() - started) / 60


def make_plan(
    config: GuardianConfig,
    skills: SkillsFile,
    repo: Path,
    playbook_name: str | None = None,
    event: Event = "commit",
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
        train_skill = model_skill(skills, playbook)
        champ = store.registry.champion(repo_id, train_skill) if repo_id and train_skill else None
        judged = verdict(store, skills, repo, name, event)
    change = judged.change
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
        last_commit=change.since,
        changed_lines=change.lines if change.since else None,
        changed_functions=change.functions,
        commits=change.commits,
        changed_files=change.files,
        should_trigger=judged.run,
        trigger_reason=judged.reason,
        steps=steps,
    )
