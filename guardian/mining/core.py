"""Language-agnostic unit extraction: one tree-sitter parse per file, one query per language.

A `LanguageSpec` says which nodes are definitions (a query capturing `@function`, `@class` and
optionally `@method`) and how to read a definition's name, signature and docstring. The core
turns the captured nodes into `Unit`s with class-qualified, Python-style qualnames, 1-based
line spans that start at the first decorator, and code dedented to the unit's own indentation.
Syntax errors never raise: units tree-sitter could not parse cleanly are dropped, the rest are
kept, and a language may supply `resync` to re-parse top-level regions swallowed by an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import structlog
from tree_sitter import Language as TSLanguage
from tree_sitter import Node, Parser, Query, QueryCursor

from guardian.records import ChunkKind, Language

log = structlog.get_logger(__name__)

_OPENERS = frozenset({"(", "[", "{"})
_CLOSERS = frozenset({")", "]", "}"})
_NO_SPACE_BEFORE = _CLOSERS | {",", ":", ";"}
_KINDS: dict[str, ChunkKind] = {"function": "function", "method": "method", "class": "class"}


@dataclass(frozen=True)
class Unit:
    """One extracted definition; lines are 1-based, inclusive, and start at its first decorator."""

    kind: ChunkKind
    name: str
    qualname: str
    signature: str
    docstring: str | None
    code: str
    start_line: int
    end_line: int


def _identity(node: Node) -> Node:
    return node


def default_name(node: Node, source: bytes) -> str | None:
    """The text of the node's `name` field; None when absent or invented by error recovery."""
    name = node.child_by_field_name("name")
    if name is None or name.is_missing or name.has_error:
        return None
    text = source[name.start_byte : name.end_byte].decode("utf-8", errors="replace")
    return text or None


@dataclass(frozen=True)
class LanguageSpec:
    """How one language's definitions are found and described; see the module docstring.

    `outer` maps a definition node to the node spanning its decorators or wrappers (start line
    and code come from it). `locals_marker` is inserted between a function and the units nested
    in it (Python: `<locals>`). `resync(source, start, end)` returns byte offsets of top-level
    definition starts inside an error region, for a second, per-region parse.
    """

    name: Language
    extensions: tuple[str, ...]
    grammar: Callable[[], Any]
    query: str
    signature: Callable[[Node, bytes], str]
    docstring: Callable[[Node, bytes], str | None]
    name_of: Callable[[Node, bytes], str | None] = default_name
    outer: Callable[[Node], Node] = _identity
    locals_marker: str | None = None
    resync: Callable[[bytes, int, int], list[int]] | None = None
    test_globs: tuple[str, ...] = ()

    @cached_property
    def language(self) -> TSLanguage:
        """The tree-sitter Language, built once per spec."""
        return TSLanguage(self.grammar())

    @cached_property
    def compiled_query(self) -> Query:
        """The definitions query, compiled once per spec."""
        return Query(self.language, self.query)


def node_text(node: Node, source: bytes) -> str:
    """The node's source text, decoded as UTF-8."""
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _leaves(node: Node) -> Iterator[Node]:
    if node.is_extra:
        return
    if node.child_count == 0 or "string" in node.type:
        yield node
        return
    for child in node.children:
        yield from _leaves(child)


def header_signature(node: Node, source: bytes, body_field: str = "body") -> str:
    """The definition's header (everything before its body) as one normalised line.

    Comments are dropped, gaps collapse to one space, brackets hug their contents, a
    trailing comma left by a multi-line layout is removed, and a final `:` is stripped.
    """
    body = node.child_by_field_name(body_field)
    stop = body.start_byte if body is not None else node.end_byte
    tokens: list[Node] = []
    for child in node.children:
        if child.start_byte >= stop:
            break
        tokens.extend(_leaves(child))
    while tokens and node_text(tokens[-1], source) == ":":
        tokens.pop()
    parts: list[str] = []
    prev: Node | None = None
    prev_text = ""
    for i, tok in enumerate(tokens):
        text = node_text(tok, source)
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if (
            text == ","
            and nxt is not None
            and node_text(nxt, source) in _CLOSERS
            and b"\n" in source[tok.end_byte : nxt.start_byte]
        ):
            continue
        if prev is not None and tok.start_byte > prev.end_byte and parts:
            if prev_text not in _OPENERS and text not in _NO_SPACE_BEFORE:
                parts.append(" ")
        parts.append(text)
        prev, prev_text = tok, text
    return "".join(parts)


def _last_token(node: Node) -> Node:
    """The node's last descendant that is not an extra (comment), like `ast`'s end position."""
    cur = node
    while cur.child_count:
        kids = [c for c in cur.children if not c.is_extra]
        if not kids:
            break
        cur = kids[-1]
    return cur


def _line_span(node: Node, end_node: Node) -> tuple[int, int]:
    start = node.start_point.row + 1
    end_row, end_col = end_node.end_point.row, end_node.end_point.column
    end = end_row + 1 if end_col > 0 or end_row == node.start_point.row else end_row
    return start, max(start, end)


def _unit_code(node: Node, end_byte: int, source: bytes) -> str:
    """The node's text from the start of its first line, dedented by that line's indentation."""
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    prefix = source[line_start : node.start_byte]
    body = source[node.start_byte : end_byte].decode("utf-8", errors="replace")
    if prefix.strip(b" \t"):
        return body
    indent = prefix.decode("utf-8")
    if not indent:
        return body
    lines = (indent + body).split("\n")
    return "\n".join(ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines)


@dataclass
class _Def:
    node: Node
    capture: str
    parent: _Def | None
    uncertain: bool
    name: str | None = None
    qualname: str | None = None


def _collect(root: Node, source: bytes, spec: LanguageSpec) -> list[_Def]:
    captures = QueryCursor(spec.compiled_query).captures(root)
    nodes: dict[int, tuple[Node, str]] = {}
    for capture in ("class", "function", "method"):
        for node in captures.get(capture, []):
            nodes.setdefault(node.id, (node, capture))
    defs: dict[int, _Def] = {}

    def resolve(node: Node, capture: str) -> _Def:
        if node.id in defs:
            return defs[node.id]
        parent: _Def | None = None
        uncertain = False
        cur = node.parent
        while cur is not None:
            if cur.id in nodes:
                parent = resolve(*nodes[cur.id])
                uncertain = uncertain or parent.uncertain
                break
            if cur.is_error:
                uncertain = True
            cur = cur.parent
        d = _Def(node, capture, parent, uncertain, spec.name_of(node, source))
        if d.name is None or (parent is not None and parent.qualname is None):
            d.qualname = None
        elif parent is None:
            d.qualname = d.name
        elif parent.capture != "class" and spec.locals_marker:
            d.qualname = f"{parent.qualname}.{spec.locals_marker}.{d.name}"
        else:
            d.qualname = f"{parent.qualname}.{d.name}"
        defs[node.id] = d
        return d

    for node, capture in sorted(nodes.values(), key=lambda nc: nc[0].start_byte):
        resolve(node, capture)
    return sorted(defs.values(), key=lambda d: d.node.start_byte)


def _units_from_tree(root: Node, source: bytes, spec: LanguageSpec, line_offset: int) -> list[Unit]:
    units: list[Unit] = []
    for d in _collect(root, source, spec):
        outer = spec.outer(d.node)
        if d.uncertain or d.qualname is None or d.name is None or outer.has_error:
            continue
        kind = _KINDS[d.capture]
        if kind == "function" and d.parent is not None and d.parent.capture == "class":
            kind = "method"
        last = _last_token(outer)
        start, end = _line_span(outer, last)
        units.append(
            Unit(
                kind=kind,
                name=d.name,
                qualname=d.qualname,
                signature=spec.signature(d.node, source),
                docstring=spec.docstring(d.node, source),
                code=_unit_code(outer, last.end_byte, source),
                start_line=start + line_offset,
                end_line=end + line_offset,
            )
        )
    return units


def _first_error_line(root: Node) -> int:
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            return node.start_point.row + 1
        stack.extend(reversed([c for c in node.children if c.has_error or c.is_missing]))
    return root.start_point.row + 1


def _resync_units(root: Node, source: bytes, spec: LanguageSpec, parser: Parser) -> list[Unit]:
    """Re-parse each top-level definition inside a top-level ERROR node on its own."""
    if spec.resync is None:
        return []
    units: list[Unit] = []
    for region in root.children:
        if not region.is_error:
            continue
        starts = spec.resync(source, region.start_byte, region.end_byte)
        bounds = [*starts, region.end_byte]
        for seg_start, seg_end in zip(bounds, bounds[1:], strict=False):
            segment = source[seg_start:seg_end]
            tree = parser.parse(segment)
            offset = source.count(b"\n", 0, seg_start)
            units.extend(_units_from_tree(tree.root_node, segment, spec, offset))
    return units


def extract_units(
    source: bytes, path: str, spec: LanguageSpec, warnings: list[str] | None = None
) -> list[Unit]:
    """Every function, method and class in one file, in source order; never raises on bad syntax.

    On a syntax error the cleanly parsed units are returned, a warning is logged and, when
    `warnings` is given, one line describing the problem is appended to it.
    """
    parser = Parser(spec.language)
    tree = parser.parse(source)
    root = tree.root_node
    units = _units_from_tree(root, source, spec, 0)
    if root.has_error:
        seen = {(u.start_line, u.qualname) for u in units}
        for unit in _resync_units(root, source, spec, parser):
            if (unit.start_line, unit.qualname) not in seen:
                seen.add((unit.start_line, unit.qualname))
                units.append(unit)
        units.sort(key=lambda u: (u.start_line, u.end_line, u.qualname))
        line = _first_error_line(root)
        log.warning("mining.syntax_error", path=path, line=line, units_kept=len(units))
        if warnings is not None:
            warnings.append(f"{path}:{line}: syntax error; kept {len(units)} cleanly parsed units")
    return units
