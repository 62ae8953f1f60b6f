"""The chunks file read in two passes: where each file's chunks are, then one pool at a time.

Lets synthesis stream a repository's chunks: memory holds byte offsets, not chunks.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from pydantic import ValidationError

from guardian.core.jsonl import first_error
from guardian.core.schema import Chunk
from guardian.errors import DataError

__all__ = ["load_chunks", "scan_chunks"]


def scan_chunks(path: Path) -> dict[str, list[tuple[int, int]]]:
    """First pass: file path -> [(byte offset, line number)] of its chunks in the JSONL file."""
    where: dict[str, list[tuple[int, int]]] = defaultdict(list)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    with handle:
        offset = 0
        for lineno, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise DataError(f"{path}:{lineno}: invalid JSON ({exc})") from None
                if not isinstance(record, dict):
                    kind = type(record).__name__
                    raise DataError(f"{path}:{lineno}: expected a JSON object (got {kind})")
                if "path" not in record:
                    raise DataError(f"{path}:{lineno}: path: Field required")
                file_path = record["path"]
                if not isinstance(file_path, str):
                    raise DataError(f"{path}:{lineno}: path: Input should be a valid string")
                where[file_path].append((offset, lineno))
            offset += len(line)
    return where


def load_chunks(path: Path, spots: list[tuple[int, int]]) -> list[Chunk]:
    """Read the chunks at the given (offset, line) spots, sorted by file position."""
    chunks: list[Chunk] = []
    first_line: dict[str, int] = {}
    with path.open("rb") as handle:
        for offset, lineno in sorted(spots):
            handle.seek(offset)
            try:
                chunk = Chunk.model_validate_json(handle.readline())
            except ValidationError as exc:
                raise DataError(f"{path}:{lineno}: {first_error(exc)}") from None
            if chunk.id in first_line:
                raise DataError(
                    f"{path}:{lineno}: id: duplicate chunk id {chunk.id} "
                    f"(first at line {first_line[chunk.id]})"
                )
            first_line[chunk.id] = lineno
            chunks.append(chunk)
    return sorted(chunks, key=lambda c: (c.path, c.start_line, c.qualname, c.id))
