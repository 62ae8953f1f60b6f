"""The one place files and dirs are written atomically and locked across processes."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from guardian.errors import LockBusy


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (used to tell stale runs, locks and temp dirs)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_write(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Yield a handle on a temp sibling of `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if binary:
            handle: IO[Any] = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8")
        with handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a whole text file atomically (temp sibling + rename)."""
    with atomic_write(path) as out:
        out.write(text)


def atomic_copy(src: Path, dest: Path) -> None:
    """Copy a file to `dest` atomically: readers see the old file or the whole new one."""
    with atomic_write(dest, binary=True) as out, src.open("rb") as source:
        shutil.copyfileobj(source, out)
    shutil.copystat(src, dest)


def replace_dir(src: Path, dest: Path) -> None:
    """Move the finished dir `src` to `dest`; an existing `dest` is swapped out, then removed."""
    if not dest.exists():
        os.replace(src, dest)
        return
    old = dest.with_name(f".{dest.name}.old.{os.getpid()}")
    os.replace(dest, old)
    os.replace(src, dest)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield a temp sibling dir to fill; it becomes `dest` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive flock on `path` holding our pid; the OS drops it if we die.

    With `wait=False` a lock held elsewhere raises LockBusy naming the holder's pid.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            raise LockBusy(path, handle.read().strip() or "?") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
