"""Cron playbooks: one APScheduler job per repo+playbook under a stable id, so replacing the
schedules (a restart or a reload) never duplicates one, and a fire only queues a trigger."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from guardian.daemon.scheduler import CronSchedules, job_id


def test_schedules_are_replaced_by_stable_ids() -> None:
    fired: list[tuple[Path, str]] = []
    cron = CronSchedules(lambda repo, pb: fired.append((repo, pb)))
    cron.start()
    try:
        a, b = Path("/r/a"), Path("/r/b")
        ids = cron.replace({(a, "nightly"): "0 3 * * *", (b, "nightly"): "30 4 * * 1"})
        assert ids == [job_id(a, "nightly"), job_id(b, "nightly")]
        again = cron.replace({(a, "nightly"): "0 3 * * *", (b, "nightly"): "30 4 * * 1"})
        assert again == ids and len(cron.scheduler.get_jobs()) == 2  # no duplicates
        cron.replace({(a, "nightly"): "15 2 * * *"})  # b dropped, a rescheduled
        (job,) = cron.scheduler.get_jobs()
        assert job.id == job_id(a, "nightly") and "hour='2'" in str(job.trigger)
        assert set(cron.next_runs()) == {job_id(a, "nightly")}
    finally:
        cron.shutdown()
    assert fired == []


def test_a_fire_calls_back_with_repo_and_playbook() -> None:
    done = threading.Event()
    seen: list[tuple[Path, str]] = []

    def fire(repo: Path, playbook: str) -> None:
        seen.append((repo, playbook))
        done.set()

    cron = CronSchedules(fire)
    cron.start()
    try:
        cron.replace({(Path("/r/a"), "nightly"): "* * * * *"})
        job = cron.scheduler.get_job(job_id(Path("/r/a"), "nightly"))
        job.modify(next_run_time=datetime.now(UTC))  # due now rather than at the next minute
        assert done.wait(30)
    finally:
        cron.shutdown()
    assert seen == [(Path("/r/a"), "nightly")]
