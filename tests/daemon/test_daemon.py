"""`guardian run` as a real subprocess on a temp git repo with the tiny model: a commit starts
a run that finishes and is recorded; a hook triggers it; SIGTERM during training stops
cleanly and a restart resumes the run; a SIGKILLed daemon loses no queued trigger; a worker
killed with SIGKILL fails its job and the daemon keeps serving. Every wait polls with a
deadline; no sleep is an assertion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardian.store.records import JobRecord, RunRecord
from guardian.store.state import StateStore
from tests.engine.test_runner import write_setup
from tests.polling import wait_for

DEADLINE = 240.0


def _wait(cond: Callable[[], Any], what: str, seconds: float = DEADLINE) -> Any:
    return wait_for(cond, what, seconds)


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e.invalid"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _commit(repo: Path, n: int) -> None:
    with (repo / "inventory" / "money.py").open("a") as fh:
        fh.write(f"\n\ndef extra_{n}(value):\n    return value + {n}\n")
    _git(repo, "commit", "-qam", f"extra {n}")


class DaemonProc:
    """A `guardian run` subprocess and the state dir it serves."""

    def __init__(self, config: Path, home: Path, log: Path) -> None:
        self.config, self.home, self.log = config, home, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "GUARDIAN_HOME": str(self.home)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "guardian", "run", "--config", str(self.config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"guardian run exited: {self.log.read_text()[-2000:]}")
            return self.status().get("state") == "running"

        _wait(up, "the daemon to be running", 60)

    def status(self) -> dict[str, Any]:
        try:
            doc = json.loads((self.home / "daemon.json").read_text())
        except (OSError, ValueError):
            return {}
        return doc if self.proc and doc.get("pid") == self.proc.pid else {}

    def stop(self, sig: int = signal.SIGTERM, seconds: float = 90) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(seconds)
        self.proc = None
        return code


def _jobs(home: Path) -> list[JobRecord]:
    with StateStore(home) as store:
        return store.jobs.listed(limit=100)


def _runs(home: Path) -> list[RunRecord]:
    with StateStore(home) as store:
        return store.runs.recent(limit=100)


@pytest.fixture()
def setup(tmp_path: Path, tiny_base: Path, demo_repo: Path) -> Iterator[tuple[DaemonProc, Path]]:
    config = write_setup(tmp_path, tiny_base, max_steps=60, margin=0.0)
    skills = yaml.safe_load((tmp_path / "skills.yaml").read_text())
    skills["skills"]["train-lora"]["params"].update(checkpoint_every=2, max_minutes=30)
    skills["playbooks"]["demo"]["trigger"] = {"events": ["commit"], "min_changed_lines": 1}
    (tmp_path / "skills.yaml").write_text(yaml.safe_dump(skills))
    cfg = yaml.safe_load(config.read_text())
    cfg["repos"] = [{"path": str(demo_repo), "playbook": "demo"}]
    cfg["daemon"] = {"poll_seconds": 0.5, "debounce_seconds": 0.3, "grace_seconds": 60}
    config.write_text(yaml.safe_dump(cfg))
    daemon = DaemonProc(config, Path(os.environ["GUARDIAN_HOME"]), tmp_path / "daemon.log")
    yield daemon, demo_repo
    if daemon.proc is not None:
        daemon.stop(signal.SIGKILL)


def _finished_runs(home: Path, n: int) -> list[RunRecord]:
    """The finished runs once `n` of them have been settled by the daemon (job done)."""
    settled = {j.run_id for j in _jobs(home) if j.status == "done" and j.run_id}
    done = [r for r in _runs(home) if r.status in ("succeeded", "promotion_pending")]
    return done if len(done) >= n and {r.id for r in done} <= settled else []


def test_commit_runs_sigterm_resumes_and_hooks_trigger(setup: tuple[DaemonProc, Path]) -> None:
    daemon, repo = setup
    home = daemon.home
    daemon.start()
    assert daemon.status()["torch_loaded"] is False

    _commit(repo, 1)  # seen by the watcher
    (run,) = _wait(lambda: _finished_runs(home, 1), "the first run to finish")
    job = next(j for j in _jobs(home) if j.run_id == run.id)
    assert job.status == "done" and job.payload.reasons[0].split(" ")[1].startswith(
        ("inotify:", "poll:")
    )
    with StateStore(home) as store:
        assert store.registry.champions()  # recorded, and promoted over the base

    hooks = subprocess.run(
        [sys.executable, "-m", "guardian", "hooks", "install", str(repo)],
        env={**os.environ, "GUARDIAN_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert hooks.returncode == 0, hooks.stderr
    _commit(repo, 2)

    def training() -> bool:
        with StateStore(home) as store:
            rows = store.db.conn.execute(
                "SELECT 1 FROM steps WHERE skill='train-lora' AND status='running'"
            ).fetchall()
        return bool(rows) and any((home / "checkpoints").glob("*.pt"))

    _wait(training, "the second run to be training with a checkpoint")
    reasons = [r.split(" ", 1)[1] for j in _jobs(home) for r in j.payload.reasons]
    assert "hook:post-commit" in reasons
    assert daemon.stop(signal.SIGTERM) == 0
    interrupted = [r for r in _runs(home) if r.status == "interrupted"]
    assert len(interrupted) == 1
    queued = [
        j
        for j in _jobs(home)
        if j.status == "queued" and "interrupted by shutdown" in j.payload.reasons[-1]
    ]
    assert len(queued) == 1  # (a second trigger of the same commit may wait beside it)
    assert not (home / "daemon.sock").exists()

    daemon.start()
    runs = _wait(lambda: _finished_runs(home, 2), "the resumed run to finish")
    assert len(runs) == 2
    log = next((home / "logs" / "jobs").glob(f"{queued[0].id}.log")).read_text()
    assert "resum" in log.lower()  # training picked up its checkpoint
    shas = [r.commit_sha for r in runs]
    assert len(set(shas)) == len(shas)  # hook and watcher both saw each commit: one run each
    skipped = [j.payload.note or "" for j in _jobs(home) if j.payload.note]
    assert all(n.startswith("skipped: HEAD") and "already ran" in n for n in skipped), skipped
    assert daemon.stop(signal.SIGTERM) == 0


def test_sigkill_loses_no_trigger_and_a_killed_worker_fails_its_job(
    setup: tuple[DaemonProc, Path],
) -> None:
    daemon, repo = setup
    home = daemon.home
    env = {**os.environ, "GUARDIAN_HOME": str(home)}
    daemon.start()
    _commit(repo, 1)

    def worker_pid() -> int | None:
        workers = daemon.status().get("workers") or []
        return int(workers[0]["pid"]) if workers else None

    pid = _wait(worker_pid, "a worker to start")
    os.kill(pid, signal.SIGKILL)
    failed = _wait(
        lambda: [j for j in _jobs(home) if j.status == "failed"], "the job to be failed", 60
    )
    assert "killed by signal 9" in failed[0].error
    assert daemon.status().get("state") == "running"  # the daemon kept serving

    daemon.stop(signal.SIGKILL)
    trig = subprocess.run(
        [sys.executable, "-m", "guardian", "trigger", str(repo), "--reason", "after-kill"]
        + ["--config", str(daemon.config)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert trig.returncode == 0, trig.stderr
    assert any(j.status == "queued" for j in _jobs(home))
    daemon.start()  # takes over the dead daemon's lock and socket, finds the queued job
    (run,) = _wait(lambda: _finished_runs(home, 1), "the queued run to finish")
    job = next(j for j in _jobs(home) if j.run_id == run.id)
    assert any("after-kill" in r for r in job.payload.reasons)
    assert daemon.stop(signal.SIGTERM) == 0


def test_the_daemon_retries_a_pending_promotion_with_backoff(
    setup: tuple[DaemonProc, Path],
) -> None:
    import socket as sockets

    from guardian.export.gguf import write_gguf
    from tests.export.test_gguf import SHIPPED
    from tests.serving.ollama_double import OllamaDouble

    daemon, repo = setup
    home = daemon.home
    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here until the double starts
    cfg = yaml.safe_load(daemon.config.read_text())
    gguf_base = daemon.config.parent / "tiny-base.gguf"  # Ollama takes a GGUF: train on one
    write_gguf(Path(cfg["base_model"]), SHIPPED, gguf_base, quant="f32")
    cfg["base_model"] = str(gguf_base)
    cfg["promote"] = {"target": "ollama", "ollama": {"host": f"http://127.0.0.1:{port}"}}
    cfg["daemon"]["retry_minutes"] = [0.02, 0.05]
    daemon.config.write_text(yaml.safe_dump(cfg))
    daemon.start()
    _commit(repo, 1)

    def pending() -> list[JobRecord]:
        jobs = _jobs(home)
        tried = [j for j in jobs if j.kind == "promote" and j.attempts >= 1]
        return tried if tried and tried[0].status == "queued" else []

    (job,) = _wait(pending, "a promote job to have failed against the dead port and wait")
    run_id = job.payload.run_id
    with StateStore(home) as store:
        assert store.runs.get(run_id).status == "promotion_pending"
        assert store.registry.champions() == []
    with OllamaDouble(port=port) as double:
        _wait(lambda: double.digest_of("demo-repo:latest"), "the retried promotion to land", 120)
        done = _wait(
            lambda: [j for j in _jobs(home) if j.id == job.id and j.status == "done"],
            "the promote job to be done",
            60,
        )
        assert done[0].attempts >= 2
        with StateStore(home) as store:
            (champ,) = store.registry.champions()
            assert champ.run_id == run_id
            assert store.runs.get(run_id).status == "succeeded"
        assert daemon.stop(signal.SIGTERM) == 0
