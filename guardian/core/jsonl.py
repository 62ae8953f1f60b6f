"""JSON and JSONL record files: streamed reads naming file:line on error, atomic writes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from guardian.core.fsutil import atomic_write
from guardian.errors import DataError

R = TypeVar("R", bound=BaseModel)


def record_line(record: BaseModel | dict[str, Any]) -> str:
    """One JSONL line for a record (sorted keys, UTF-8 kept), so every writer is byte-identical."""
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n"


def first_error(exc: ValidationError) -> str:
    """`field.path: message` of a ValidationError's first error, for one-line data errors."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "<record>"
    return f"{loc}: {str(err['msg']).removeprefix('Value error, ')}"


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a UTF-8 text file; a missing or unreadable file, or a
    line that is not UTF-8, is a DataError naming file and line."""
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    with handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
                raise DataError(f"{path}:{lineno}: not UTF-8 text (byte {byte:#04x})") from None


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
            raise DataError(f"{path}:{lineno}: {first_error(exc)}") from exc


def write_jsonl(path: Path, records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write records atomically (temp file + rename); returns the number written."""
    count = 0
    with atomic_write(path) as out:
        for rec in records:
            out.write(record_line(rec))
            count += 1
    return count


def write_json(path: Path, data: Any) -> None:
    """Write one JSON document atomically (temp file + rename)."""
    with atomic_write(path) as out:
        json.dump(data, out, indent=2, sort_keys=True, ensure_ascii=False)
        out.write("\n")
