"""Mining one file: content skips, secret redaction, extraction, and ready-to-write chunk lines.

`mine_file` is the unit of work of the process pool and of the parse cache: its `FileResult`
holds everything the output needs from the file, with each chunk already serialised except
the per-run fields (`repo`, `commit`, `clone_of`), which `chunk_line` splices in; together
they are exactly the fields of `guardian.core.schema.Chunk`. Secrets are redacted from the source
text before it is parsed, so no field of any chunk (code, signature, docstring) and no cache
entry ever holds one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from guardian.core.fsutil import atomic_write

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def chunk_id(path: str, qualname: str, ordinal: int = 0) -> str:
    """A stable 16-hex-char id: path and qualname, plus `#n` for the n-th repeat of a qualname.

    Line numbers are not part of it, so edits elsewhere in the file keep the id.
    """
    key = f"{path}:{qualname}" + (f"#{ordinal}" if ordinal else "")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass
class FileResult:
    """What one file contributes: its chunks (serialised) and per-file counts."""

    path: str
    language: str
    skip: str | None = None
    ids: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    norm_hashes: list[str] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)
    cache_error: str = ""

    def dumps(self) -> bytes:
        """The cache-file form: a JSON header line, then one chunk line per unit."""
        header = {
            "path": self.path,
            "language": self.language,
            "skip": self.skip,
            "units": [list(u) for u in zip(self.ids, self.kinds, self.norm_hashes, strict=True)],
            "warnings": self.warnings,
            "redactions": self.redactions,
        }
        head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return b"".join([head, b"\n", *(line + b"\n" for line in self.lines)])

    @classmethod
    def loads(cls, data: bytes) -> FileResult:
        """Parse `dumps` output; raises ValueError when it is truncated or malformed."""
        head, _, body = data.partition(b"\n")
        header = json.loads(head)
        lines = body.split(b"\n")
        if lines[-1] != b"":
            raise ValueError("cache entry is truncated")
        lines.pop()
        units = header["units"]
        if len(units) != len(lines):
            raise ValueError("cache entry has a wrong number of chunk lines")
        return cls(
            path=header["path"],
            language=header["language"],
            skip=header["skip"],
            ids=[u[0] for u in units],
            kinds=[u[1] for u in units],
            norm_hashes=[u[2] for u in units],
            lines=lines,
            warnings=list(header["warnings"]),
            redactions=dict(header["redactions"]),
        )


def chunk_line(line: bytes, repo_json: bytes, commit: bytes, clone_of: str | None) -> bytes:
    """A full chunk JSON line from a cached one plus this run's repo, commit and clone mark."""
    clone = b"null" if clone_of is None else b'"' + clone_of.encode() + b'"'
    return b'{"repo":%s,"commit":"%s","clone_of":%s,%s' % (repo_json, commit, clone, line[1:])


def store(cache_file: Path, result: FileResult) -> None:
    """Write a cache entry atomically (temp file + rename): a killed run leaves none half-done."""
    with atomic_write(cache_file, binary=True) as out:
        out.write(result.dumps())


@dataclass(frozen=True)
class Task:
    """One file to mine: its path, bytes, whether to redact, and its cache file (or None)."""

    path: str
    data: bytes
    redact: bool
    cache_file: Path | None


def mine_file(task: Task) -> FileResult:
    """Mine one file's bytes (skips, redaction, units, chunk lines) and cache the result."""
    from guardian.mining import extract_units, spec_for_path
    from guardian.mining.secrets import redact
    from guardian.mining.skips import content_skip

    spec = spec_for_path(task.path)
    if spec is None:
        raise ValueError(f"{task.path}: no miner for this file type")
    result = FileResult(path=task.path, language=spec.name)
    result.skip = content_skip(task.path, task.data, spec.name)
    if result.skip is None:
        data = task.data
        if task.redact:
            text, counts = redact(data.decode("utf-8"))
            if counts:
                data = text.encode("utf-8")
                result.redactions = dict(sorted(counts.items()))
        units = extract_units(data, task.path, spec, result.warnings)
        units.sort(key=lambda u: (u.start_line, u.qualname))
        seen: dict[str, int] = {}
        for unit in units:
            ordinal = seen.get(unit.qualname, 0)
            seen[unit.qualname] = ordinal + 1
            ident = chunk_id(task.path, unit.qualname, ordinal)
            record = {
                "id": ident,
                "path": task.path,
                "language": spec.name,
                "kind": unit.kind,
                "name": unit.name,
                "qualname": unit.qualname,
                "signature": unit.signature,
                "docstring": unit.docstring,
                "code": unit.code,
                "start_line": unit.start_line,
                "end_line": unit.end_line,
                "content_hash": hashlib.sha256(unit.code.encode("utf-8")).hexdigest(),
            }
            result.ids.append(ident)
            result.kinds.append(unit.kind)
            result.norm_hashes.append(unit.norm_hash)
            result.lines.append(_dumps(record).encode("utf-8"))
    if task.cache_file is not None:
        try:
            store(task.cache_file, result)
        except OSError as exc:
            result.cache_error = f"{task.cache_file}: {exc.strerror or exc}"
    return result
