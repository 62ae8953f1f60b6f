"""Where hand-run commands put things: scratch space under the state dir, and user outputs
written only by replacing what guardian itself wrote before (never a user's own files)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from guardian.core.fsutil import atomic_copy, atomic_dir, replace_dir, scratch_dir, sweep_scratch
from guardian.errors import DataError
from guardian.store.artifacts import scratch_root

OUTPUT_MARKER = "guardian-output.json"


@contextmanager
def workspace(home: Path, label: str) -> Iterator[Path]:
    """A scratch dir under the state dir, removed on every exit (SIGTERM and Ctrl-C included);
    one left by a SIGKILL is swept by the next command."""
    root = scratch_root(home)
    sweep_scratch(root)
    try:
        tmp = scratch_dir(root, label)
    except OSError as exc:
        raise DataError(f"{root}: cannot create a scratch dir ({exc.strerror})") from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _writable_ancestor(path: Path) -> Path:
    probe = path.absolute().parent
    while not probe.exists():
        probe = probe.parent
    return probe


def check_out_file(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output file path that cannot be written."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory ({option} takes a file path)")
    where = _writable_ancestor(path)
    if not where.is_dir():
        raise DataError(f"{path}: {where} is not a directory")
    if not os.access(where, os.W_OK):
        raise DataError(f"{path}: cannot write in {where} (permission denied)")


def _foreign_entries(path: Path) -> list[str]:
    """Entries of an existing dir that no earlier guardian output there accounts for."""
    present = sorted(os.listdir(path))
    try:
        recorded = set(json.loads((path / OUTPUT_MARKER).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return present
    return [name for name in present if name != OUTPUT_MARKER and name not in recorded]


def check_out_dir(path: Path, inputs: list[Path], option: str = "--out") -> None:
    """Refuse, before any work, an output dir that is a file, is a non-empty dir guardian did
    not write, holds one of the inputs, or cannot be written."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: exists and is not a directory ({option} takes a directory)")
    foreign = _foreign_entries(path) if path.is_dir() else []
    if foreign:
        raise DataError(
            f"{path}: holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''} that "
            f"guardian did not write; refusing to replace it (give {option} a new or empty "
            "directory)"
        )
    target = path.resolve()
    for inp in inputs:
        source = inp.resolve()
        if source == target or target in source.parents:
            raise DataError(f"{path}: holds the input {inp}; give {option} another directory")
    where = _writable_ancestor(path)
    if not os.access(where, os.W_OK):
        raise DataError(f"{path}: cannot write in {where} (permission denied)")


def place_file(src: Path, dest: Path) -> None:
    """Copy a finished file to the user's path atomically; an I/O failure is one line."""
    try:
        atomic_copy(src, dest)
    except OSError as exc:
        raise DataError(f"{dest}: cannot write ({exc.strerror})") from None


def place_dir(src: Path, dest: Path, command: str) -> None:
    """Move a finished output dir to the user's path, replacing only an earlier guardian output;
    the dir is marked as ours so a later run may replace it."""
    files = sorted(os.listdir(src))
    (src / OUTPUT_MARKER).write_text(json.dumps({"command": command, "files": files}) + "\n")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if os.stat(src).st_dev == os.stat(dest.parent).st_dev:
            replace_dir(src, dest)
            return
        with atomic_dir(dest) as staging:
            shutil.copytree(src, staging, dirs_exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot write ({exc.strerror})") from None
