"""The job queue: triggers coalesce per repo+playbook, a repo runs one job at a time, claims
never hand the same job to two processes, and dead workers' jobs go back to the queue."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from guardian.store.jobs import JobStatus
from guardian.store.state import StateStore


def _repo(store: StateStore, tmp_path: Path, name: str) -> int:
    (tmp_path / name).mkdir(exist_ok=True)
    return store.db.ensure_repo(tmp_path / name, name)


def test_triggers_coalesce_and_a_repo_runs_one_job_at_a_time(tmp_path: Path) -> None:
    with StateStore(tmp_path / "home") as store:
        a, b = _repo(store, tmp_path, "a"), _repo(store, tmp_path, "b")
        first, joined = store.jobs.enqueue(a, "retrain", "hook:post-commit")
        assert not joined
        for reason in ("watch", "cli"):
            assert store.jobs.enqueue(a, "retrain", reason) == (first, True)
        other, joined = store.jobs.enqueue(a, "nightly", "cron")  # another playbook: its own
        assert not joined and other != first
        job = store.jobs.get(first)
        assert job is not None and job.payload.triggers == 3
        assert [r.split(" ", 1)[1] for r in job.payload.reasons] == [
            "hook:post-commit",
            "watch",
            "cli",
        ]
        in_b, _ = store.jobs.enqueue(b, "retrain", "cli")

        claimed = store.jobs.claim(pid=111)
        assert claimed is not None and claimed.id == first and claimed.attempts == 1
        second = store.jobs.claim(pid=111)
        assert second is not None and second.id == in_b  # repo a is busy: b goes next
        assert store.jobs.claim(pid=111) is None
        # a trigger while a's job runs queues a new one (the running job saw an older HEAD)
        later, joined = store.jobs.enqueue(a, "retrain", "watch")
        assert not joined and later != first
        store.jobs.finish(first, JobStatus.DONE, run_id="r1")
        nxt = store.jobs.claim(pid=111)
        assert nxt is not None and nxt.id == other
        assert store.jobs.get(first).status == "done"
        assert store.jobs.get(first).run_id == "r1"


def test_dead_workers_jobs_are_requeued_and_delays_hold(tmp_path: Path) -> None:
    with StateStore(tmp_path / "home") as store:
        a = _repo(store, tmp_path, "a")
        job_id, _ = store.jobs.enqueue(a, "retrain", "cli")
        store.jobs.claim(pid=999_999_999)
        assert store.jobs.recover(lambda pid: pid != 999_999_999) == [job_id]
        job = store.jobs.get(job_id)
        assert job is not None and job.status == "queued" and job.pid is None
        assert store.jobs.claim(pid=1) is not None
        store.jobs.requeue(job_id, "promotion pending", delay_seconds=3600)
        assert store.jobs.claim(pid=1) is None  # not due for an hour
        assert [j.id for j in store.jobs.listed(("queued",))] == [job_id]


def _claimer(home: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    got = []
    with StateStore(Path(home)) as store:
        while (job := store.jobs.claim(pid=1)) is not None:
            got.append(job.id)
    out.put(got)


def test_concurrent_claims_never_share_a_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with StateStore(home) as store:
        ids = {store.jobs.enqueue(_repo(store, tmp_path, f"r{i}"), "p", "x")[0] for i in range(40)}
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(str(home), out)) for _ in range(4)]
    for p in procs:
        p.start()
    claimed = [job for _ in procs for job in out.get(timeout=60)]
    for p in procs:
        p.join(30)
    assert sorted(claimed) == sorted(ids)  # every job once, none twice
