"""Whether a claimed job should run: the job's reasons give the event, the change since the
model in service and the playbook's trigger policy give the answer (engine/change.py); and
what a run whose promotion is pending is owed: a promote job, retried with backoff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from guardian.config.skills import SkillsFile
from guardian.engine.change import change_since, decide, event_of
from guardian.engine.keys import model_skill
from guardian.engine.plan import minutes_since_last_run, since_commit
from guardian.store.jobs import JobStatus
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


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


def retry_promotion(
    store: StateStore, job: dict[str, Any], run_id: str | None, backoff: list[float]
) -> None:
    """After exit code 3 (target unreachable): a run job is done and queues a delayed promote
    job for its run; a promote job goes back to the queue with the next, longer delay."""
    if job["kind"] == "promote":
        delay = backoff[min(int(job.get("attempts", 1)), len(backoff) - 1)] * 60
        store.jobs.requeue(str(job["id"]), "promotion still pending", delay)
        log.warning("promotion still pending: will retry", run=run_id, minutes=delay / 60)
        return
    store.jobs.finish(str(job["id"]), JobStatus.DONE, run_id=run_id)
    if run_id is not None:
        store.jobs.enqueue(
            int(job["repo_id"]),
            str(job["playbook"]),
            f"promotion pending for run {run_id}",
            kind="promote",
            delay_seconds=backoff[0] * 60,
            extra={"run_id": run_id},
        )
    log.warning("promotion pending: will retry", run=run_id, minutes=backoff[0])
