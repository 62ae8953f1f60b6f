"""Atomic writes, scratch sweeps and the file lock, including takeover from orphaned holders."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from guardian.core.fsutil import (
    FILE_MODE,
    atomic_dir,
    atomic_write,
    file_lock,
    scratch_dir,
    sweep_scratch,
    sweep_temp_files,
)


def test_atomic_write_keeps_the_old_file_on_error_and_uses_normal_permissions(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as out:
        out.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with atomic_write(target) as out:
        out.write("new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == FILE_MODE
    assert FILE_MODE & 0o044  # readable by others under the usual umask, unlike mkstemp's 0600


def test_atomic_dir_replaces_only_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "keep").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(dest) as tmp:
        (tmp / "new").write_text("2")
        raise RuntimeError("boom")
    assert [p.name for p in dest.iterdir()] == ["keep"]
    with atomic_dir(dest) as tmp:
        (tmp / "new").write_text("2")
    assert [p.name for p in dest.iterdir()] == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_sweeps_remove_only_dead_processes_leftovers(tmp_path: Path) -> None:
    mine = scratch_dir(tmp_path / "tmp", "train")
    dead = tmp_path / "tmp" / "train.999999999.abcd"
    dead.mkdir()
    assert sweep_scratch(tmp_path / "tmp") == 1 and mine.exists() and not dead.exists()
    (tmp_path / "ck").mkdir()
    stale = tmp_path / "ck" / ".train-x.pt.999999999.k2j3h4g5.tmp"
    live = tmp_path / "ck" / f".train-x.pt.{os.getpid()}.k2j3h4g5.tmp"
    user = tmp_path / "ck" / ".notes.tmp"
    for p in (stale, live, user):
        p.write_text("x")
    assert sweep_temp_files(tmp_path) == 1
    assert not stale.exists() and live.exists() and user.exists()


def test_lock_busy_names_a_live_holder(tmp_path: Path) -> None:
    lock = tmp_path / "repo.lock"
    with file_lock(lock, wait=False):
        code = (
            "import sys\nfrom pathlib import Path\n"
            "from guardian.core.fsutil import file_lock\nfrom guardian.errors import LockBusy\n"
            "try:\n    with file_lock(Path(sys.argv[1]), wait=False): print('got it')\n"
            "except LockBusy as e: print('busy', e.holder)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True)
        assert proc.stdout.decode().split() == ["busy", str(os.getpid())]


def test_lock_held_only_by_orphans_of_a_dead_holder_is_taken_over(tmp_path: Path) -> None:
    """The holder takes the lock, forks a child that inherits the descriptor, and dies."""
    lock = tmp_path / "repo.lock"
    code = (
        "import os, sys, time\nfrom pathlib import Path\n"
        "from guardian.core.fsutil import file_lock\n"
        "with file_lock(Path(sys.argv[1]), wait=False):\n"
        "    child = os.fork()\n"
        "    if child == 0:\n"
        "        devnull = os.open(os.devnull, os.O_WRONLY)\n"
        "        os.dup2(devnull, 1)\n"
        "        os.dup2(devnull, 2)\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    print(os.getpid(), child, flush=True)\n"
        "    os._exit(0)\n"
    )
    holder = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True)
    assert holder.returncode == 0, holder.stderr
    dead_pid, orphan = holder.stdout.decode().split()
    try:
        assert lock.read_text() == dead_pid
        with lock.open("a") as probe, pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the orphan really holds it
        with file_lock(lock, wait=False):  # yet we get it: its recorded holder is dead
            assert lock.read_text() == str(os.getpid())
    finally:
        os.kill(int(orphan), signal.SIGKILL)
