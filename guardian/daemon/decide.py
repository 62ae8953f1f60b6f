"""Whether a claimed job should run: the job's reasons give the event, the change since the
model in service and the playbook's trigger policy give the answer (engine/change.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guardian.config.skills import SkillsFile
from guardian.engine.change import change_since, decide, event_of
from guardian.engine.keys import model_skill
from guardian.engine.plan import minutes_since_last_run, since_commit
from guardian.store.state import StateStore


def decide_job(
    home: Path, skills: SkillsFile, repo: Path, playbook_name: str, payload: dict[str, Any]
) -> tuple[bool, str]:
    """(run?, why) for a queued run job; a HEAD that already ran is not run again."""
    playbook = skills.playbook(playbook_name)
    reasons = [str(r).split(" ", 1)[-1] for r in payload.get("reasons", [])]
    events = {event_of(r) for r in reasons} or {"manual"}
    event = next((e for e in ("manual", "tag", "schedule") if e in events), "commit")
    with StateStore(home) as store:
        repo_id = store.db.repo_id(repo)
        since = since_commit(store, repo_id, model_skill(skills, playbook))
        waited = minutes_since_last_run(store, repo_id)
        last = store.runs.last(repo_id, ("succeeded", "promotion_pending")) if repo_id else None
    change = change_since(repo, since, playbook.trigger.paths)
    if event != "manual" and last is not None and last["commit_sha"] == change.head:
        return False, f"HEAD {change.head[:7]} already ran (run {last['id']})"
    return decide(change, playbook.trigger, event, waited)
