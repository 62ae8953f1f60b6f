"""`guardian run` (DESIGN.md §7): starting -> running -> stopping -> stopped, one per state dir.

Triggers are job rows (hooks, CLI, watcher, cron); a datagram on `daemon.sock` wakes the loop,
which claims jobs, decides each with its playbook's trigger policy and runs the ones that
should run in worker subprocesses. SIGTERM/SIGINT stop taking work and give workers
`grace_seconds` to checkpoint (their jobs resume on the next start); SIGHUP reloads the
config, keeping the old one when the new one is invalid; sd_notify under systemd. The
daemon never imports torch: workers train.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.core.fsutil import file_lock, pid_alive
from guardian.daemon import worker as workers
from guardian.daemon.decide import decide_job, retry_promotion
from guardian.daemon.notify import Watchdog, sd_notify
from guardian.daemon.scheduler import CronSchedules
from guardian.daemon.status import snapshot, write_status
from guardian.daemon.watch import Change, RepoWatcher, WatchedRepo
from guardian.engine.check import check_config
from guardian.engine.trigger import playbook_for, socket_path, trigger, wake
from guardian.errors import GuardianError
from guardian.store.records import JobKind, JobRecord, JobStatus
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)

LOCK_NAME = "daemon.lock"
_BEAT = 1.0  # seconds between loop turns when nothing wakes it
STATUS_EVERY = 30.0  # an unchanged status file is still refreshed this often


class State(StrEnum):
    """The daemon's run state."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


def load_setup(config_path: Path | None) -> tuple[GuardianConfig, SkillsFile]:
    """Config and skills as `guardian validate` checks them; raises every problem at once."""
    found = check_config(config_path, None)
    found.raise_problems()
    assert found.config is not None and found.skills is not None
    return found.config, found.skills


class Daemon:
    """One `guardian run` process."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self.config, self.skills = load_setup(config_path)
        self.home = self.config.home
        self.state = State.STARTING
        self.workers: dict[str, workers.Worker] = {}
        self.decisions: dict[str, dict[str, Any]] = {}
        self.watcher: RepoWatcher | None = None
        self.cron: CronSchedules | None = None
        self.sock: socket.socket | None = None
        self.store: StateStore
        self._stop_asked = False
        self._reload_asked = False
        self._stop_deadline = 0.0
        self.watchdog = Watchdog()
        self._last_status: dict[str, Any] = {}
        self._status_at = 0.0
        self._started = time.time()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        self.home.mkdir(parents=True, exist_ok=True)
        with file_lock(self.home / LOCK_NAME, wait=False), StateStore(self.home) as store:
            self.store = store  # one connection for the loop: an idle turn opens no files
            self._install_signals()
            try:
                self._start()
                while self.state is not State.STOPPED:
                    self._turn()
            finally:
                self._shutdown()
        return 0

    def _start(self) -> None:
        with self._db() as store:
            resumed = store.jobs.recover(pid_alive)
            stale = store.runs.mark_stale()
        if resumed or stale:
            log.info("resuming", jobs=resumed, stale_runs=stale)
        path = socket_path(self.home)
        path.unlink(missing_ok=True)  # ours: we hold the lock, so no other daemon uses it
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(_BEAT)
        self._start_watching()
        self.state = State.RUNNING
        sd_notify("READY=1\nSTATUS=watching " + f"{len(self.config.repos)} repos")
        log.info(
            "daemon running", pid=os.getpid(), repos=len(self.config.repos), home=str(self.home)
        )
        self._write_status()

    def _start_watching(self) -> None:
        repos = [
            WatchedRepo(
                path=self.config.repo_path(r),
                branch=r.branch,
                remote=r.remote,
                fetch_minutes=r.fetch_minutes,
            )
            for r in self.config.repos
        ]
        settings = self.config.daemon
        self.watcher = RepoWatcher(
            repos,
            self._on_change,
            mode=settings.watch,
            poll_seconds=settings.poll_seconds,
            debounce_seconds=settings.debounce_seconds,
        )
        self.watcher.start()
        self.cron = CronSchedules(self._on_cron)
        self.cron.start()
        self.cron.replace(self._schedules())

    def _schedules(self) -> dict[tuple[Path, str], str]:
        out = {}
        for r in self.config.repos:
            policy = self.skills.playbook(r.playbook).trigger
            if policy.schedule:
                out[(self.config.repo_path(r), r.playbook)] = policy.schedule
        return out

    def _stop_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.cron is not None:
            self.cron.shutdown()
            self.cron = None

    # -- triggers from other threads: a row first, then a wake-up -------------------------
    def _on_change(self, change: Change) -> None:
        self._enqueue(
            change.repo, self._playbook_of(change.repo), f"{change.source}:{change.new[:7]}"
        )

    def _on_cron(self, repo: Path, playbook: str) -> None:
        self._enqueue(repo, playbook, f"cron:{playbook}")

    def _enqueue(self, repo: Path, playbook: str, reason: str) -> None:
        try:
            done = trigger(self.config, repo, reason, playbook)
            log.info(
                "triggered", repo=str(repo), reason=reason, job=done.job_id, joined=done.joined
            )
        except Exception as exc:  # a watcher thread must never die of one bad trigger
            log.error("trigger failed", repo=str(repo), error=str(exc))

    @contextmanager
    def _db(self) -> Iterator[StateStore]:
        """The loop's own state connection (the main thread's; other threads open theirs)."""
        yield self.store

    def _wake(self) -> None:
        wake(self.home)

    def _playbook_of(self, repo: Path) -> str:
        return playbook_for(self.config, repo) or self.config.default_playbook

    # -- the loop -----------------------------------------------------------------------
    def _turn(self) -> None:
        assert self.sock is not None
        with suppress(TimeoutError, BlockingIOError, InterruptedError):  # a beat with no news
            self.sock.recv(64)
        if self._reload_asked:
            self._reload_asked = False
            self._reload()
        if self._stop_asked and self.state is State.RUNNING:
            self._begin_stop()
        self._reap()
        if self.state is State.RUNNING:
            self._dispatch()
        elif self.state is State.STOPPING:
            self._drain()
        self.watchdog.beat()
        self._write_status()

    def _dispatch(self) -> None:
        while len(self.workers) < self.config.daemon.concurrency:
            with self._db() as store:
                job = store.jobs.claim(os.getpid())
            if job is None:
                return
            self._start_job(job)

    def _start_job(self, job: JobRecord) -> None:
        repo = Path(str(job.repo_path))
        job = job.model_copy(update={"playbook": job.playbook or self._playbook_of(repo)})
        if job.kind == JobKind.RUN:
            try:
                run, why = decide_job(self.home, self.skills, repo, str(job.playbook), job.payload)
            except Exception as exc:  # a deleted repo, a git error: fail the job, not the daemon
                self._finish(job, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
                return
            self.decisions[str(repo)] = {"at": time.time(), "run": run, "why": why}
            log.info("decision", repo=str(repo), run=run, why=why, job=job.id)
            if not run:
                self._finish(job, JobStatus.DONE, note=f"skipped: {why}")
                return
        try:
            w = workers.spawn(job, self.home, self.config.source)
        except OSError as exc:
            self._finish(job, JobStatus.FAILED, error=f"cannot start a worker: {exc}")
            return
        with self._db() as store:
            store.jobs.set_worker(job.id, w.proc.pid)
        self.workers[w.job_id] = w
        sd_notify(f"STATUS=running {job.kind} for {repo.name} (job {job.id})")
        log.info("job started", job=job.id, kind=str(job.kind), repo=str(repo), pid=w.proc.pid)

    def _reap(self) -> None:
        for job_id, w in list(self.workers.items()):
            code = w.proc.poll()
            if code is None:
                continue
            del self.workers[job_id]
            self._settle(w, code)

    def _settle(self, w: workers.Worker, code: int) -> None:
        job = w.job
        run_id = self._run_of(job, w.started)
        if self.state is State.STOPPING and w.term_sent is not None and code != 0:
            with self._db() as store:
                store.jobs.requeue(w.job_id, "interrupted by shutdown: resumes on the next start")
            log.info("job interrupted", job=w.job_id, code=code, run=run_id)
            return
        if code == 0:
            self._finish(job, JobStatus.DONE, run_id=run_id)
        elif code == workers.PENDING_EXIT:
            with self._db() as store:
                retry_promotion(store, job, run_id, self.config.daemon.retry_minutes)
        else:
            why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            error = f"worker {why}: {workers.last_line(w.log_path)}".rstrip(": ")
            self._finish(job, JobStatus.FAILED, run_id=run_id, error=error)
        sd_notify("STATUS=idle")

    def _run_of(self, job: JobRecord, started: float) -> str | None:
        if job.kind == JobKind.PROMOTE:
            return job.payload.run_id
        with self._db() as store:
            recent = store.runs.recent(limit=1, repo_id=job.repo_id)
        if recent and _stamp(recent[0].started_at) >= int(started) - 1:
            return recent[0].id
        return None

    def _finish(
        self,
        job: JobRecord,
        status: JobStatus,
        run_id: str | None = None,
        error: str | None = None,
        note: str | None = None,
    ) -> None:
        with self._db() as store:
            store.jobs.finish(job.id, status, run_id=run_id, error=error, note=note)
        log.info("job finished", job=job.id, status=str(status), run=run_id, error=error, note=note)

    # -- signals, reload, stop ----------------------------------------------------------
    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_hup)
        signal.signal(signal.SIGCHLD, self._on_child)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_asked = True
        self._wake()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload_asked = True
        self._wake()

    def _on_child(self, signum: int, frame: FrameType | None) -> None:
        self._wake()  # a worker ended: settle it now, not at the next beat

    def _reload(self) -> None:
        sd_notify("RELOADING=1")
        try:
            config, skills = load_setup(self.config_path)
        except (GuardianError, OSError, ValueError) as exc:
            log.error("reload refused: keeping the running config", error=str(exc))
            sd_notify("READY=1\nSTATUS=reload refused: " + str(exc)[:200])
            return
        if config.home != self.home:
            log.error("reload refused: the state dir cannot change while running")
            sd_notify("READY=1")
            return
        self._stop_watching()
        before = self.config, self.skills
        self.config, self.skills = config, skills
        try:
            self._start_watching()
        except GuardianError as exc:  # e.g. a new repo that is not a git repository
            log.error("reload refused: keeping the running config", error=str(exc))
            self._stop_watching()
            self.config, self.skills = before
            self._start_watching()
            sd_notify("READY=1\nSTATUS=reload refused: " + str(exc)[:200])
            return
        log.info("config reloaded", repos=len(config.repos))
        sd_notify("READY=1\nSTATUS=reloaded")

    def _begin_stop(self) -> None:
        self.state = State.STOPPING
        sd_notify("STOPPING=1")
        log.info("stopping", workers=len(self.workers), grace=self.config.daemon.grace_seconds)
        self._stop_watching()
        self._stop_deadline = time.monotonic() + self.config.daemon.grace_seconds
        for w in self.workers.values():
            workers.stop(w)

    def _drain(self) -> None:
        if not self.workers:
            self.state = State.STOPPED
            return
        if time.monotonic() >= self._stop_deadline:
            for w in list(self.workers.values()):
                log.warning("grace period over: killing worker", job=w.job_id, pid=w.proc.pid)
                workers.kill(w)
            self._reap()
            self.state = State.STOPPED

    def _shutdown(self) -> None:
        self._stop_watching()
        for w in list(self.workers.values()):
            workers.stop(w)
            workers.kill(w)
            with self._db() as store:
                store.jobs.requeue(w.job_id, "interrupted: the daemon exited")
        self.workers.clear()
        if self.sock is not None:
            self.sock.close()
            socket_path(self.home).unlink(missing_ok=True)
        self.state = State.STOPPED
        self._write_status()
        log.info("daemon stopped")

    # -- observability ------------------------------------------------------------------
    def _write_status(self) -> None:
        """Rewrite daemon.json when something in it changed, else every STATUS_EVERY s."""
        doc = snapshot(self)
        same = {k: v for k, v in doc.items() if k != "updated_at"} == self._last_status
        if same and time.monotonic() - self._status_at < STATUS_EVERY:
            return
        write_status(self.home, doc)
        self._last_status = {k: v for k, v in doc.items() if k != "updated_at"}
        self._status_at = time.monotonic()


def _stamp(iso: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp())
