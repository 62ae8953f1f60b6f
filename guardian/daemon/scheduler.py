"""Cron playbooks: APScheduler fires a trigger for each repo whose playbook has a `schedule`.

Job ids are `cron:<repo path>:<playbook>`, added with replace_existing in an in-memory store,
so a restart or a reload never duplicates a schedule; a fire only queues a row (coalescing
with one already queued), and a fire missed while the daemon was down is not replayed
beyond one (`coalesce`, one-hour grace).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


def job_id(repo: Path, playbook: str) -> str:
    """The stable scheduler id of one repo's cron playbook."""
    return f"cron:{repo}:{playbook}"


class CronSchedules:
    """A background APScheduler with one cron job per scheduled repo+playbook."""

    def __init__(self, fire: Callable[[Path, str], None]) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.fire = fire
        self.scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone="UTC",
        )

    def start(self) -> None:
        """Start the scheduler thread."""
        self.scheduler.start()

    def replace(self, schedules: dict[tuple[Path, str], str]) -> list[str]:
        """Make the scheduled jobs exactly `schedules` ((repo, playbook) -> cron); returns ids."""
        from apscheduler.triggers.cron import CronTrigger

        wanted = {job_id(repo, pb): (repo, pb, cron) for (repo, pb), cron in schedules.items()}
        for job in self.scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for jid, (repo, playbook, cron) in wanted.items():
            self.scheduler.add_job(
                self.fire,
                CronTrigger.from_crontab(cron, timezone="UTC"),
                args=(repo, playbook),
                id=jid,
                replace_existing=True,
            )
        log.info("schedules", count=len(wanted))
        return sorted(wanted)

    def next_runs(self) -> dict[str, str]:
        """Each scheduled job's next fire time (ISO), for `guardian status`."""
        return {
            str(j.id): j.next_run_time.isoformat() if j.next_run_time else "paused"
            for j in self.scheduler.get_jobs()
        }

    def shutdown(self) -> None:
        """Stop the scheduler thread without waiting for running fires."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
