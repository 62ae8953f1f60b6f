"""Whether a claimed job should run: the job's reasons give the event, the change since the
model in service and the playbook's trigger policy give the answer (engine/change.py); and
what a run whose promotion is pending is owed: a promote job, retried with backoff."""

from __future__ import annotations

from pathlib import Path

import structlog

from guardian.config.skills import SkillsFile
from guardian.engine.change import event_of
from guardian.engine.plan import verdict
from guardian.store.records import JobKind, JobPayload, JobRecord, JobStatus
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


def decide_job(
    home: Path, skills: SkillsFile, repo: Path, playbook_name: str, payload: JobPayload
) -> tuple[bool, str]:
    """(run?, why) for a queued run job: its reasons give the event, engine.plan.verdict
    (the same answer `guardian plan` shows) the rest."""
    reasons = [r.split(" ", 1)[-1] for r in payload.reasons]
    events = {event_of(r) for r in reasons} or {"manual"}
    event = next((e for e in ("manual", "tag", "schedule") if e in events), "commit")
    with StateStore(home) as store:
        judged = verdict(store, skills, repo, playbook_name, event)
    return judged.run, judged.reason


def retry_promotion(
    store: StateStore, job: JobRecord, run_id: str | None, backoff: list[float]
) -> None:
    """After exit code 3 (target unreachable): a run job is done and queues a delayed promote
    job for its run; a promote job goes back to the queue with the next, longer delay."""
    if job.kind == JobKind.PROMOTE:
        delay = backoff[min(max(job.attempts, 1), len(backoff) - 1)] * 60
        store.jobs.requeue(job.id, "promotion still pending", delay)
        log.warning("promotion still pending: will retry", run=run_id, minutes=delay / 60)
        return
    store.jobs.finish(job.id, JobStatus.DONE, run_id=run_id)
    if run_id is not None and job.repo_id is not None:
        store.jobs.enqueue(
            job.repo_id,
            job.playbook or "",
            f"promotion pending for run {run_id}",
            kind=JobKind.PROMOTE,
            delay_seconds=backoff[0] * 60,
            run_id=run_id,
        )
    log.warning("promotion pending: will retry", run=run_id, minutes=backoff[0])
