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


_BARE_CALL = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")
_QUALIFIED_CALL = re.compile(r"(?<![\w.])[A-Za-z_]\w*\.([A-Za-z_]\w*)\s*\(")
_DOTTED_CALL = re.compile(r"\.([A-Za-z_]\w*)\s*\(")


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
    method other than the unit itself whose body calls the name: `.name(` for a method,
    `name(` or `module.name(` for a function or class. Each body is read once, so this is
    linear in the size of the code (it is built for every `guardian ask`).
    """
    names = Counter(c.name for c in chunks)
    plain: dict[str, set[int]] = {}
    dotted: dict[str, set[int]] = {}
    callers = [c for c in chunks if c.kind != "class"]
    for i, caller in enumerate(callers):
        body = _body(caller)
        for called in {*_BARE_CALL.findall(body), *_QUALIFIED_CALL.findall(body)}:
            plain.setdefault(called, set()).add(i)
        for called in set(_DOTTED_CALL.findall(body)):
            dotted.setdefault(called, set()).add(i)
    out: dict[str, list[str]] = {}
    for target in chunks:
        if names[target.name] != 1 or target.name.startswith("__"):
            continue
        index = dotted if target.kind == "method" else plain
        found = sorted(
            {callers[i].qualname for i in index.get(target.name, ()) if callers[i].id != target.id}
        )
        if found:
            out[target.id] = found[:MAX_CALLERS]
    return out
