"""Facts that span chunks: which symbols are public, who calls whom, what each file defines.

Synthesis states these facts in training samples, the knowledge probe asks about them, and
context documents carry them (a `Called by:` line), so all three agree on one definition.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from guardian.core.schema import Chunk

__all__ = ["MAX_CALLERS", "callers_of", "is_public", "is_test_path", "top_level"]

MAX_CALLERS = 5


def is_public(chunk: Chunk) -> bool:
    """Whether a unit is part of its module's public surface (no `_` part, not nested)."""
    if "<locals>" in chunk.qualname:
        return False
    return not any(part.startswith("_") for part in chunk.qualname.split("."))


def is_test_path(path: str) -> bool:
    """Whether a file holds tests (a `tests`/`test` directory or a `test_*`/`*_test` name)."""
    parts = path.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    in_dir = any(p in ("tests", "test", "__tests__") for p in parts[:-1])
    return in_dir or stem.startswith("test_") or stem.endswith(("_test", ".test", ".spec"))


def top_level(chunks: Sequence[Chunk]) -> dict[str, list[Chunk]]:
    """File path -> its top-level units in file order."""
    files: dict[str, list[Chunk]] = defaultdict(list)
    for c in sorted(chunks, key=lambda c: (c.path, c.start_line, c.qualname)):
        if "." not in c.qualname:
            files[c.path].append(c)
    return dict(files)


def _call_pattern(target: Chunk) -> re.Pattern[str]:
    name = re.escape(target.name)
    if target.kind == "method":
        return re.compile(rf"\.{name}\s*\(")
    return re.compile(rf"(?<![\w.])(?:[A-Za-z_]\w*\.)?{name}\s*\(")


def _body(chunk: Chunk) -> str:
    lines = chunk.code.splitlines()
    start = next(
        (
            i
            for i, ln in enumerate(lines)
            if ln.lstrip().startswith(("def ", "async def ", "function ", "func ", "class "))
        ),
        0,
    )
    return "\n".join(lines[start + 1 :])


def callers_of(chunks: Sequence[Chunk]) -> dict[str, list[str]]:
    """Chunk id -> qualnames of the functions and methods that call it (at most MAX_CALLERS).

    Only units whose short name is unique among the chunks get callers: a call to a shared
    name (`run`, `__init__`) cannot be told apart without types. A caller is a function or
    method other than the unit itself whose body calls the name (`.name(` for methods).
    """
    names = Counter(c.name for c in chunks)
    bodies = [(c, _body(c)) for c in chunks if c.kind != "class"]
    out: dict[str, list[str]] = {}
    for target in chunks:
        if names[target.name] != 1 or target.name.startswith("__"):
            continue
        pattern = _call_pattern(target)
        found = sorted(
            {c.qualname for c, body in bodies if c.id != target.id and pattern.search(body)}
        )
        if found:
            out[target.id] = found[:MAX_CALLERS]
    return out
