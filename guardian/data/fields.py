"""Template fields: the facts a template may name, read off one chunk or one file's outline.

A missing fact is the empty string, so a template that needs it renders nothing.
"""

from __future__ import annotations

from collections.abc import Collection

from guardian.core.schema import Chunk
from guardian.data.docfacts import (
    body_of,
    call_example,
    doc_section,
    import_line,
    module_name,
    parameter_names,
    parameters_text,
    return_annotation,
    section_text,
    summary_of,
    summary_quote,
)
from guardian.data.tasks import task_of

__all__ = [
    "DOC_FIELDS",
    "FIELDS",
    "MODULE_FIELDS",
    "callers_line",
    "chunk_fields",
    "module_fields",
    "overview",
    "params_line",
    "returns_line",
]

FIELDS: tuple[str, ...] = (
    "qualname",
    "name",
    "module",
    "path",
    "location",
    "kind",
    "signature",
    "docstring",
    "summary",
    "summary_quote",
    "returns",
    "returns_quote",
    "raises",
    "raises_quote",
    "parameters",
    "param_names",
    "returns_type",
    "callers",
    "callers_line",
    "params_line",
    "returns_line",
    "file_name",
    "call",
    "import_line",
    "code",
    "body",
    "start_line",
    "end_line",
    "language",
    "task",
    "overview",
)
MODULE_FIELDS: tuple[str, ...] = (
    "module",
    "path",
    "language",
    "outline",
    "members",
    "defines_line",
)
DOC_FIELDS = frozenset(
    {
        "docstring",
        "summary",
        "summary_quote",
        "returns",
        "returns_quote",
        "raises",
        "raises_quote",
        "task",
    }
)


def _names(items: Collection[str] | None) -> str:
    quoted = [f"`{x}`" for x in items or ()]
    if len(quoted) < 2:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def params_line(chunk: Chunk) -> str:
    """The document line naming a def's parameters (`Parameters: a, b`), "" when it has none."""
    names = parameter_names(chunk)
    return f"Parameters: {', '.join(names)}" if names else ""


def returns_line(chunk: Chunk) -> str:
    """The document line naming a def's return annotation (`Return type: int`), or ""."""
    ret = return_annotation(chunk)
    return f"Return type: {ret}" if ret else ""


def callers_line(callers: Collection[str]) -> str:
    """The document line naming the units that call a unit (`Called by: f, C.g`), or ""."""
    return f"Called by: {', '.join(sorted(callers))}" if callers else ""


def overview(chunk: Chunk, summary: str, callers: Collection[str] = ()) -> str:
    """Everything the repo states about a unit, as a few sentences of prose: what and where
    it is, its docstring's summary, what it takes and returns, and what uses it."""
    out = [f"`{chunk.qualname}` is a {chunk.kind} in `{chunk.path}`."]
    if summary:
        out.append(summary if summary.endswith((".", "!", "?")) else summary + ".")
    names, ret = parameter_names(chunk), return_annotation(chunk)
    if names and ret:
        out.append(f"It takes {_names(names)} and returns `{ret}`.")
    elif names:
        out.append(f"It takes {_names(names)}.")
    elif ret:
        out.append(f"It returns `{ret}`.")
    if callers:
        out.append(f"It is used by {_names(sorted(callers))}.")
    return " ".join(out)


def chunk_fields(
    chunk: Chunk,
    only: Collection[str] | None = None,
    *,
    min_docstring_chars: int = 0,
    callers: Collection[str] = (),
) -> dict[str, str]:
    """Placeholder values for a chunk (all, or just `only`); a missing fact is the empty string.

    A docstring shorter than `min_docstring_chars` counts as missing, with every fact drawn
    from it. Costly facts (the body needs a parse) are only computed when asked for.
    `callers` (from data/facts.py) are the units that call this one.
    """
    doc = (chunk.docstring or "").strip()
    if len(doc) < min_docstring_chars:
        doc = ""
    module = module_name(chunk.path)
    makers = {
        "qualname": lambda: chunk.qualname,
        "name": lambda: chunk.name,
        "module": lambda: module,
        "path": lambda: chunk.path,
        "location": lambda: f"{chunk.path}:{chunk.start_line}-{chunk.end_line}",
        "kind": lambda: chunk.kind,
        "signature": lambda: chunk.signature.strip(),
        "docstring": lambda: doc,
        "summary": lambda: summary_of(doc),
        "summary_quote": lambda: summary_quote(doc),
        "returns": lambda: section_text(doc_section(doc, "returns")),
        "returns_quote": lambda: doc_section(doc, "returns"),
        "raises": lambda: section_text(doc_section(doc, "raises")),
        "raises_quote": lambda: doc_section(doc, "raises"),
        "parameters": lambda: parameters_text(chunk),
        "param_names": lambda: _names(parameter_names(chunk)),
        "returns_type": lambda: return_annotation(chunk),
        "callers": lambda: _names(sorted(callers)),
        "callers_line": lambda: callers_line(callers),
        "params_line": lambda: params_line(chunk),
        "returns_line": lambda: returns_line(chunk),
        "file_name": lambda: chunk.path.rsplit("/", 1)[-1],
        "call": lambda: call_example(chunk),
        "import_line": lambda: import_line(chunk, module),
        "code": lambda: chunk.code.strip("\n"),
        "body": lambda: body_of(chunk),
        "start_line": lambda: str(chunk.start_line),
        "end_line": lambda: str(chunk.end_line),
        "language": lambda: chunk.language,
        "task": lambda: task_of(summary_of(doc))[0],
        "overview": lambda: overview(chunk, summary_of(doc), callers),
    }
    names = FIELDS if only is None else [n for n in FIELDS if n in only]
    return {name: makers[name]() for name in names}


def module_fields(path: str, members: list[Chunk], max_members: int = 12) -> dict[str, str]:
    """Facts about one file from its top-level units (module-scope templates and documents).

    `outline` lists the signatures of the first `max_members` top-level units, one a line;
    `members` names them in a sentence, saying how many more there are, and `defines_line`
    is the document line listing them (`Defines: A, f (+2 more)`).
    """
    top = sorted(
        (c for c in members if "." not in c.qualname), key=lambda c: (c.start_line, c.qualname)
    )
    shown = top[:max_members]
    names = [f"`{c.qualname}` ({c.kind})" for c in shown]
    if len(top) > len(shown):
        names.append(f"{len(top) - len(shown)} more definitions")
    members_text = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)
    more = f" (+{len(top) - len(shown)} more)" if len(top) > len(shown) else ""
    defines = f"Defines: {', '.join(c.qualname for c in shown)}{more}" if shown else ""
    return {
        "module": module_name(path),
        "path": path,
        "language": top[0].language if top else "",
        "outline": "\n".join(c.signature.strip() for c in shown),
        "members": members_text,
        "defines_line": defines,
    }
