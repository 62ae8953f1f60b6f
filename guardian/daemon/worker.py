"""Pipeline jobs run in a child process (`guardian run-once` / `guardian promote`), so a crash
or an OOM kill in training fails that job and never the daemon.

The child gets SIGTERM if the daemon dies (Linux `PR_SET_PDEATHSIG`), so no worker outlives
it unsupervised; its run then stops at a checkpoint and resumes when the daemon restarts.
Output goes to `<home>/logs/jobs/<job>.log`; a failed job's error is the log's last line.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from guardian.store.records import JobKind, JobRecord

PENDING_EXIT = 3  # run-once / promote: gate passed, the promotion target was unreachable
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform.startswith("linux"):
        with suppress(OSError):  # no such libc: the worker then outlives a killed daemon
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Worker:
    """One running job: its process, log file and when it started."""

    job: JobRecord
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float
    term_sent: float | None = None

    @property
    def job_id(self) -> str:
        """The job this worker runs."""
        return self.job.id


def command(job: JobRecord, config_path: Path | None) -> list[str]:
    """The guardian command line that carries out a job."""
    cmd = [sys.executable, "-m", "guardian"]
    if job.kind == JobKind.PROMOTE:
        cmd += ["promote", str(job.payload.run_id)]
    else:
        cmd += ["run-once", str(job.repo_path), "--playbook", str(job.playbook)]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    return cmd


def spawn(job: JobRecord, home: Path, config_path: Path | None) -> Worker:
    """Start the child process for a claimed job."""
    log_dir = home / "logs" / "jobs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{job.id}.log"
    env = {**os.environ, "GUARDIAN_HOME": str(home), "GUARDIAN_JOB_ID": job.id}
    env.pop("NOTIFY_SOCKET", None)  # only the daemon talks to systemd
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command(job, config_path),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
    return Worker(job, proc, log_path, time.time())


def last_line(path: Path, limit: int = 400) -> str:
    """The last non-empty line of a log (a failed job's error), at most `limit` characters."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 8192))
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""


def stop(worker: Worker) -> None:
    """Ask a worker to stop at its next checkpoint (SIGTERM), once."""
    if worker.term_sent is None and worker.proc.poll() is None:
        worker.proc.send_signal(signal.SIGTERM)
        worker.term_sent = time.time()


def kill(worker: Worker) -> None:
    """Kill a worker that outlived the grace period."""
    if worker.proc.poll() is None:
        worker.proc.kill()
        worker.proc.wait(10)
