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


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Files we write get the permissions open() would give them (0666 less the umask), not the
# 0600 of mkstemp; read once at import, before any thread could race on os.umask.
FILE_MODE = 0o666 & ~_read_umask()


TEMP_SUFFIX = ".tmp"


def sweep_temp_files(root: Path) -> int:
    """Remove `atomic_write` temp files below `root` left by dead processes; returns how many."""
    removed = 0
    for path in root.rglob(f".*{TEMP_SUFFIX}"):
        pid = scratch_pid(path.name[: -len(TEMP_SUFFIX)])
        if pid and path.is_file() and not pid_alive(pid):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def scratch_dir(root: Path, label: str) -> Path:
    """A fresh temp dir `<root>/<label>.<pid>.<random>`; `sweep_scratch` removes it if we die."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{label}.{os.getpid()}.", dir=root))


def scratch_pid(name: str) -> int:
    """The pid recorded in a scratch dir's name (0 when the name has none)."""
    parts = name.split(".")
    return int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else 0


def sweep_scratch(root: Path) -> int:
    """Remove the scratch dirs under `root` whose creating process is dead; returns how many."""
    removed = 0
    if not root.is_dir():
        return 0
    for entry in root.iterdir():
        if not pid_alive(scratch_pid(entry.name)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def atomic_write(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """Yield a handle on a temp sibling of `path`; it replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent
    )
    os.fchmod(fd, FILE_MODE)
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


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "?"


def _take_over(path: Path, stale: IO[str]) -> None:
    """Unlink a lock file whose recorded holder is dead but whose flock is still held.

    That happens when the holder died and left children that inherited the descriptor; they
    keep the old inode locked, and the next opener gets a fresh file at the same path. A
    short lock on a side file keeps two takers from unlinking each other's fresh lock.
    """
    with path.with_name(path.name + ".takeover").open("a") as side:
        fcntl.flock(side, fcntl.LOCK_EX)
        if _same_file(path, stale.fileno()):
            path.unlink()


@contextmanager
def file_lock(path: Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive flock on `path` holding our pid; the OS drops it if we die.

    With `wait=False` a lock held by a live process raises LockBusy naming its pid; a lock
    whose recorded holder is dead (held only by orphaned descendants) is taken over.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _holder(handle)
            if holder.isdigit() and not pid_alive(int(holder)):
                _take_over(path, handle)
                handle.close()
                continue
            handle.close()
            raise LockBusy(path, holder) from None
        if not _same_file(path, handle.fileno()):
            handle.close()  # taken over while we waited: lock the file now at the path
            continue
        break
    else:
        raise LockBusy(path, "?")
    with handle:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
