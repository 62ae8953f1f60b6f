"""The daemon's lifecycle without training: sd_notify over a real NOTIFY_SOCKET (READY,
WATCHDOG pings, STOPPING), one instance per state dir, SIGHUP reload (an invalid config is
refused and the old one kept), and no torch in the daemon process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from guardian.daemon.notify import sd_notify, watchdog_interval
from guardian.store.state import StateStore
from tests.daemon.test_daemon import DaemonProc
from tests.engine.test_runner import write_setup
from tests.helpers_git import make_git_repo
from tests.polling import wait_for as _wait


def _config(tmp_path: Path, tiny_base: Path, repos: list[Path]) -> Path:
    config = write_setup(tmp_path, tiny_base)
    cfg = yaml.safe_load(config.read_text())
    cfg["repos"] = [{"path": str(r), "playbook": "demo"} for r in repos]
    cfg["daemon"] = {"poll_seconds": 0.5}
    cfg["log"] = {"format": "json", "level": "info"}
    config.write_text(yaml.safe_dump(cfg))
    return config


def test_sd_notify_ready_watchdog_stopping(tmp_path: Path, tiny_base: Path) -> None:
    repo = tmp_path / "r"
    make_git_repo(repo, {"a.py": "def f():\n    return 1\n"})
    config = _config(tmp_path, tiny_base, [repo])
    address = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(0.2)
    env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "300000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "guardian", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: list[str] = []

    def heard(word: str, count: int = 1) -> bool:
        try:
            seen.extend(listener.recv(4096).decode().splitlines())
        except TimeoutError:
            pass
        return sum(1 for m in seen if m == word) >= count

    try:
        _wait(lambda: heard("READY=1"), "READY=1", 60)
        _wait(lambda: heard("WATCHDOG=1", 3), "three WATCHDOG=1 pings", 10)
        assert any(m.startswith("STATUS=watching 1 repos") for m in seen)
        proc.send_signal(signal.SIGTERM)
        _wait(lambda: heard("STOPPING=1"), "STOPPING=1", 30)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert seen.index("READY=1") < seen.index("STOPPING=1")


def test_notify_helpers_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # someone else's watchdog
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 1.0


def test_one_instance_reload_and_no_torch(tmp_path: Path, tiny_base: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    for repo in (first, second):
        make_git_repo(repo, {"a.py": "def f():\n    return 1\n"})
    config = _config(tmp_path, tiny_base, [first])
    home = Path(os.environ["GUARDIAN_HOME"])
    daemon = DaemonProc(config, home, tmp_path / "daemon.log")
    daemon.start()
    try:
        assert daemon.status()["torch_loaded"] is False
        again = subprocess.run(
            [sys.executable, "-m", "guardian", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1 and "locked by pid" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1

        good = yaml.safe_load(config.read_text())
        good["repos"].append({"path": str(second), "playbook": "demo"})
        config.write_text(yaml.safe_dump(good))
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        _wait(lambda: len(daemon.status().get("repos", [])) == 2, "the reload to add a repo", 30)

        config.write_text("repos: [unclosed\n")
        daemon.proc.send_signal(signal.SIGHUP)
        _wait(lambda: "reload refused" in daemon.log.read_text(), "the refusal log line", 30)
        bad_repo = yaml.safe_load(yaml.safe_dump(good))
        bad_repo["repos"].append({"path": str(tmp_path / "not-a-repo"), "playbook": "demo"})
        config.write_text(yaml.safe_dump(bad_repo))
        daemon.proc.send_signal(signal.SIGHUP)
        _wait(lambda: daemon.log.read_text().count("reload refused") >= 2, "a second refusal", 30)
        time.sleep(0.5)  # let a turn pass; the old config must still be served
        status = daemon.status()
        assert status["state"] == "running" and len(status["repos"]) == 2

        gone = tmp_path / "gone"
        make_git_repo(gone, {"a.py": "x = 1\n"})
        trig = subprocess.run(
            [sys.executable, "-m", "guardian", "trigger", str(gone), "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert trig.returncode == 0, trig.stderr
        shutil.rmtree(gone)  # deleted before the daemon gets to it: that job fails, alone

        def failed() -> list[dict[str, object]]:
            with StateStore(home) as store:
                return [j for j in store.jobs.listed() if j.status == "failed"]

        (job,) = _wait(failed, "the job of the deleted repo to fail", 30)
        assert "no such directory" in str(job.error)
        assert daemon.status()["state"] == "running"
    finally:
        assert daemon.stop(signal.SIGTERM) == 0
