"""Content-addressed artifact dirs: keyed by sha256 of step inputs+params, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from guardian.core.fsutil import (
    atomic_write_text,
    replace_dir,
    scratch_dir,
    sweep_scratch,
    sweep_temp_files,
)

META_NAME = "_artifact.json"


def cache_key(payload: dict[str, Any]) -> str:
    """sha256 of a canonical JSON encoding of everything that determines a step's output."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def dir_digest(root: Path) -> str:
    """sha256 over the relative paths and bytes of every file below `root` (metadata excluded)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != META_NAME):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def dir_size(root: Path) -> int:
    """Total bytes of the files below `root`."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def file_stats(root: Path) -> dict[str, list[int]]:
    """relative path -> [size, mtime_ns] of every file below `root` (metadata excluded)."""
    stats: dict[str, list[int]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != META_NAME):
        st = path.stat()
        stats[path.relative_to(root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return stats


class Health(StrEnum):
    """What a check of a committed artifact found."""

    OK = "ok"
    MISSING = "missing"
    DAMAGED = "damaged"


def scratch_root(home: Path) -> Path:
    """The state dir's scratch area for commands run by hand (swept like artifact temp dirs)."""
    return home / "tmp"


class ArtifactStore:
    """The `artifacts/` folder of the state dir: one dir per cache key, plus a temp area."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "artifacts"
        self.tmp_root = self.root / ".tmp"

    def path(self, key: str) -> Path:
        """Where the artifact with this key lives (whether or not it exists yet)."""
        return self.root / key

    def exists(self, key: str) -> bool:
        """True when an artifact with this key has been committed (not checked; see `check`)."""
        return (self.path(key) / META_NAME).is_file()

    def check(self, key: str, *, full: bool = False) -> Health:
        """Whether the artifact is there and intact: its files against the recorded sizes and
        mtimes, and the recorded digest when those differ, when no sizes were recorded (an
        artifact from before they were) or when `full` is asked for."""
        if not self.exists(key):
            return Health.MISSING
        try:
            meta = self.meta(key)
        except (OSError, ValueError):
            return Health.DAMAGED
        root = self.path(key)
        recorded = meta.get("files")
        current = file_stats(root)
        if isinstance(recorded, dict):
            if {k: v[0] for k, v in current.items()} != {k: v[0] for k, v in recorded.items()}:
                return Health.DAMAGED
            if current == recorded and not full:
                return Health.OK
        if dir_digest(root) != meta.get("digest"):
            return Health.DAMAGED
        if recorded != current:
            atomic_write_text(root / META_NAME, json.dumps({**meta, "files": current}, indent=2))
        return Health.OK

    def quarantine(self, key: str) -> Path:
        """Move a damaged artifact out of the cache (kept for inspection); returns where."""
        dest = self.root / ".quarantine" / f"{key}.{time.strftime('%Y%m%dT%H%M%S')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(key), dest)
        return dest

    def keys(self) -> list[str]:
        """Keys of every artifact dir in the store (committed or debris), sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith("."))

    def meta(self, key: str) -> dict[str, Any]:
        """The metadata written when the artifact was committed (digest, step, kind...)."""
        data: dict[str, Any] = json.loads((self.path(key) / META_NAME).read_text())
        return data

    def begin(self, key: str) -> Path:
        """A fresh temp dir to build the artifact in; named with our pid for stale sweeps."""
        return scratch_dir(self.tmp_root, key[:16])

    def commit(self, key: str, tmp: Path, meta: dict[str, Any]) -> Path:
        """Seal the temp dir (digest + metadata) and rename it into place atomically."""
        final = self.path(key)
        info = {
            **meta,
            "key": key,
            "digest": dir_digest(tmp),
            "size_bytes": dir_size(tmp),
            "files": file_stats(tmp),
        }
        (tmp / META_NAME).write_text(json.dumps(info, indent=2, sort_keys=True))
        if self.exists(key):
            shutil.rmtree(tmp)
            return final
        # A dir without metadata is debris from a crash before this design; replace it.
        replace_dir(tmp, final)
        return final

    def abandon(self, tmp: Path) -> None:
        """Drop a temp dir after a failed step."""
        shutil.rmtree(tmp, ignore_errors=True)

    def sweep(self) -> int:
        """Remove what dead processes left half-done (after a SIGKILL): artifact temp dirs,
        command scratch dirs and atomic-write temp files anywhere in the state dir."""
        removed = sweep_scratch(self.tmp_root) + sweep_scratch(scratch_root(self.home))
        return removed + sweep_temp_files(self.home)
