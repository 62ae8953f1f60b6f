"""Records that cross step boundaries (chunks, samples) and their JSONL files."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardian.errors import DataError

Language = Literal["python", "javascript", "typescript", "go"]
ChunkKind = Literal["function", "method", "class"]


class Chunk(BaseModel):
    """One mined code unit (function, method or class) at one commit."""

    model_config = ConfigDict(extra="forbid")

    id: str
    repo: str
    commit: str
    path: str = Field(description="relative to the repo root, POSIX separators")
    language: Language
    kind: ChunkKind
    name: str
    qualname: str
    signature: str
    docstring: str | None = None
    code: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    content_hash: str
    clone_of: str | None = Field(
        default=None,
        description="id of the first chunk (in output order) with the same normalised tokens",
    )


class Sample(BaseModel):
    """One instruction-tuning example; metadata carries provenance and RAFT fields."""

    model_config = ConfigDict(extra="forbid")

    instruction: str | None = None
    input: str
    output: str
    metadata: dict[str, Any] = Field(default_factory=dict)


R = TypeVar("R", bound=BaseModel)


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a text file; a missing or unreadable file is a DataError."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    with handle:
        yield from enumerate(handle, start=1)


def read_jsonl(path: Path, model: type[R]) -> Iterator[R]:
    """Stream records from a JSONL file; a bad line raises DataError naming file:line and field."""
    for lineno, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        try:
            yield model.model_validate(obj)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "<record>"
            raise DataError(f"{path}:{lineno}: {loc}: {err['msg']}") from exc


def write_jsonl(path: Path, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write records atomically (temp file + rename); returns the number written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for rec in records:
                data = rec.model_dump(mode="json") if isinstance(rec, BaseModel) else rec
                out.write(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def write_json(path: Path, data: Any) -> None:
    """Write one JSON document atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True, ensure_ascii=False)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
