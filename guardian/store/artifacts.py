"""Content-addressed artifact dirs: keyed by sha256 of step inputs+params, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from guardian.core.fsutil import pid_alive, replace_dir

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


class ArtifactStore:
    """The `artifacts/` folder of the state dir: one dir per cache key, plus a temp area."""

    def __init__(self, home: Path) -> None:
        self.root = home / "artifacts"
        self.tmp_root = self.root / ".tmp"
        self.tmp_root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the artifact with this key lives (whether or not it exists yet)."""
        return self.root / key

    def exists(self, key: str) -> bool:
        """True when a complete artifact with this key has been committed."""
        return (self.path(key) / META_NAME).is_file()

    def meta(self, key: str) -> dict[str, Any]:
        """The metadata written when the artifact was committed (digest, step, kind...)."""
        data: dict[str, Any] = json.loads((self.path(key) / META_NAME).read_text())
        return data

    def begin(self, key: str) -> Path:
        """A fresh temp dir to build the artifact in; named with our pid for stale sweeps."""
        tmp = self.tmp_root / f"{key[:16]}.{os.getpid()}.{os.urandom(3).hex()}"
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, key: str, tmp: Path, meta: dict[str, Any]) -> Path:
        """Seal the temp dir (digest + metadata) and rename it into place atomically."""
        final = self.path(key)
        info = {**meta, "key": key, "digest": dir_digest(tmp), "size_bytes": dir_size(tmp)}
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
        """Remove temp dirs left by dead processes (after a SIGKILL); returns how many."""
        removed = 0
        for tmp in self.tmp_root.iterdir():
            parts = tmp.name.split(".")
            pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0
            if not pid_alive(pid):
                shutil.rmtree(tmp, ignore_errors=True)
                removed += 1
        return removed
