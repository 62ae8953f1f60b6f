"""Where mined files come from: a git commit's tree (the default) or a plain directory on disk.

Git: one `ls-tree` lists every entry with its blob id and size, `cat-file --batch` reads only
the blobs that must be parsed, `diff --name-only` answers `--since`. Never the working tree:
uncommitted edits and untracked files are invisible. Plain directories are walked on disk
without following symlinks; `.git`, vendored and ignored directories are not descended into
and count once each. Both give blob ids the same way (git's), so cache entries are shared.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from guardian.core.gitutil import is_commit, run_git
from guardian.errors import RepoError
from guardian.mining.skips import VENDORED_DIRS, IgnoreRules

_BATCH_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One tree entry: kind is `file`, `symlink` or `submodule`; oid is git's blob id."""

    path: str
    kind: str
    size: int
    oid: str


def blob_id(data: bytes) -> str:
    """Git's blob id of `data` (sha1 of `blob <size>\\0<data>`)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def size_batches(entries: list[Entry], limit: int) -> Iterator[list[Entry]]:
    """`entries` in order, cut where their sizes reach `limit`, so that reading or parsing
    one batch holds a bounded amount of source (one file larger than it is a batch alone)."""
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        batch.append(entry)
        size += entry.size
        if size >= limit:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class GitSource:
    """The tree of HEAD's commit in a git repository."""

    plain = False

    def __init__(self, root: Path, commit: str) -> None:
        self.root = root
        self.commit = commit
        self.pruned: Counter[str] = Counter()

    def entries(self) -> list[Entry]:
        """Every entry of the commit's tree, recursively, sorted by path."""
        out = run_git(self.root, "ls-tree", "-r", "-z", "--long", "--full-tree", self.commit)
        found: list[Entry] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid, size = meta.split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind == b"commit":
                found.append(Entry(path, "submodule", 0, oid.decode()))
            elif mode == b"120000":
                found.append(Entry(path, "symlink", 0, oid.decode()))
            else:
                found.append(Entry(path, "file", int(size), oid.decode()))
        found.sort(key=lambda e: e.path)
        return found

    def read(self, entries: list[Entry]) -> dict[str, bytes]:
        """Bytes of the given entries' blobs by path, read in a few `cat-file --batch` calls."""
        result: dict[str, bytes] = {}
        for batch in size_batches(entries, _BATCH_BYTES):
            result.update(self._read_batch(batch))
        return result

    def _read_batch(self, batch: list[Entry]) -> dict[str, bytes]:
        request = "".join(f"{e.oid}\n" for e in batch).encode()
        out = run_git(self.root, "cat-file", "--batch", stdin=request)
        result: dict[str, bytes] = {}
        pos = 0
        for entry in batch:
            newline = out.index(b"\n", pos)
            header = out[pos:newline].split()
            if len(header) != 3:
                raise RepoError(f"{self.root}: blob {entry.oid} of {entry.path} is missing")
            start = newline + 1
            end = start + int(header[2])
            result[entry.path] = out[start:end]
            pos = end + 1
        return result

    def ignore_rules(self, entries: list[Entry]) -> IgnoreRules:
        """The `.gitignore` files committed in the tree."""
        files = [
            e for e in entries if e.kind == "file" and e.path.rpartition("/")[2] == ".gitignore"
        ]
        texts = self.read(files)
        return IgnoreRules(
            {
                path.rpartition("/")[0]: data.decode("utf-8", "replace")
                for path, data in texts.items()
            }
        )

    def changed_since(self, rev: str) -> set[str]:
        """Paths that differ between `rev` and the mined commit (added, modified or deleted)."""
        if not is_commit(self.root, rev):
            raise RepoError(f"{self.root}: --since {rev}: unknown revision")
        out = run_git(
            self.root, "diff", "--name-only", "-z", "--no-renames", rev, self.commit, "--"
        )
        return {p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p}


class DirSource:
    """The files under a plain directory (no git), as they are on disk now."""

    plain = True
    commit = ""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pruned: Counter[str] = Counter()
        self._rules = IgnoreRules({})
        self._gitignores: dict[str, str] = {}

    def entries(self) -> list[Entry]:
        """Every file and symlink under the root; pruned directories are counted in `pruned`."""
        found: list[Entry] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir
            if ".gitignore" in filenames:
                text = (Path(dirpath) / ".gitignore").read_text("utf-8", errors="replace")
                self._gitignores[rel_dir] = text
                self._rules = IgnoreRules(self._gitignores)
            keep: list[str] = []
            for name in sorted(dirnames):
                rel = f"{rel_dir}/{name}" if rel_dir else name
                if name == ".git":
                    continue
                if os.path.islink(os.path.join(dirpath, name)):
                    found.append(Entry(rel, "symlink", 0, ""))
                elif name in VENDORED_DIRS:
                    self.pruned["vendored"] += 1
                elif self._rules.ignored(rel, is_dir=True):
                    self.pruned["gitignored"] += 1
                else:
                    keep.append(name)
            dirnames[:] = keep
            for name in filenames:
                rel = f"{rel_dir}/{name}" if rel_dir else name
                info = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISLNK(info.st_mode):
                    found.append(Entry(rel, "symlink", 0, ""))
                elif stat.S_ISREG(info.st_mode):
                    found.append(Entry(rel, "file", info.st_size, ""))
        found.sort(key=lambda e: e.path)
        return found

    def read(self, entries: list[Entry]) -> dict[str, bytes]:
        """Bytes of the given files by path."""
        return {e.path: (self.root / e.path).read_bytes() for e in entries}

    def ignore_rules(self, entries: list[Entry]) -> IgnoreRules:
        """The `.gitignore` files found while walking."""
        return self._rules

    def changed_since(self, rev: str) -> set[str]:
        """Always an error: a plain directory has no history to diff against."""
        raise RepoError(f"{self.root}: --since needs a git repository")
