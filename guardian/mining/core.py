"""Language-agnostic unit extraction: one tree-sitter parse per file, one query per language.

A `LanguageSpec` says which nodes are definitions (a query capturing `@function`, `@class`,
`@method`, and optional `@scope` for name-only containers such as TS namespaces) and how to
read a definition's name, signature and docstring. The core turns the captured nodes into
`Unit`s with class-qualified qualnames, exact 1-based line spans and code dedented to the
unit's own indentation. A span starts at the unit's first decorator, or, for languages with
`doc_comments`, at the contiguous comment block right above it. Syntax errors never raise:
units tree-sitter could not parse cleanly are dropped, the rest are kept, and a language may
supply `resync` to re-parse top-level regions swallowed by an error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import structlog
from tree_sitter import Language as TSLanguage
from tree_sitter import Node, Parser, Query, QueryCursor

from guardian.core.schema import ChunkKind, Language
from guardian.mining.syntax import header_signature, line_resync, node_text

__all__ = [
    "LanguageSpec",
    "Unit",
    "default_name",
    "extract_units",
    "header_signature",
    "leading_nodes",
    "line_resync",
    "node_text",
    "norm_hash",
]

log = structlog.get_logger(__name__)

_UNIT_CAPTURES = ("class", "function", "method", "scope")


@dataclass(frozen=True)
class Unit:
    """One extracted definition; lines are 1-based, inclusive, and include its decorators.

    `norm_hash` hashes the unit's tokens with comments, layout and its own name removed, so
    exact near-duplicates (clones) share it.
    """

    kind: ChunkKind
    name: str
    qualname: str
    signature: str
    docstring: str | None
    code: str
    start_line: int
    end_line: int
    norm_hash: str = ""


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

    `outer` maps a definition node to the node spanning its decorators or wrappers (`export`,
    `const x = ...;`). `leading_types` are sibling node types absorbed in front of it (TS
    class-member decorators); `doc_comments` absorbs the comment block directly above.
    `qualifier(node, source)` prefixes a top-level unit's qualname and makes it a method (Go
    receivers, `Foo.prototype.bar = ...`). `locals_marker` is inserted between a function and
    the units nested in it (Python: `<locals>`). `resync(source, start, end)` returns byte
    offsets of top-level definition starts inside an error region, for a per-region re-parse.
    """

    name: Language
    extensions: tuple[str, ...]
    grammar: Callable[[], Any]
    query: str
    signature: Callable[[Node, bytes], str]
    docstring: Callable[[Node, bytes, list[Node]], str | None]
    name_of: Callable[[Node, bytes], str | None] = default_name
    outer: Callable[[Node], Node] = _identity
    qualifier: Callable[[Node, bytes], str | None] | None = None
    leading_types: frozenset[str] = frozenset()
    doc_comments: bool = False
    locals_marker: str | None = None
    resync: Callable[[bytes, int, int], list[int]] | None = None
    test_globs: tuple[str, ...] = ()
    comment_pattern: bytes = rb"//[^\n]*|/\*.*?\*/"

    @cached_property
    def language(self) -> TSLanguage:
        """The tree-sitter Language, built once per spec."""
        return TSLanguage(self.grammar())

    @cached_property
    def compiled_query(self) -> Query:
        """The definitions query, compiled once per spec."""
        return Query(self.language, self.query)

    @cached_property
    def comment_regex(self) -> re.Pattern[bytes]:
        """Lexical comment matcher used only to normalise code for clone hashes."""
        return re.compile(self.comment_pattern, re.DOTALL)


def _last_token(node: Node) -> Node:
    """The node's last descendant that is not an extra (comment), like `ast`'s end position."""
    cur = node
    while cur.child_count:
        child: Node | None = cur.child(cur.child_count - 1)
        while child is not None and child.is_extra:
            child = child.prev_sibling
        if child is None:
            break
        cur = child
    return cur


def _own_line(node: Node, source: bytes) -> bool:
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    return not source[line_start : node.start_byte].strip(b" \t\r\xef\xbb\xbf")


def leading_nodes(outer: Node, spec: LanguageSpec, source: bytes) -> tuple[Node, list[Node]]:
    """The first node of a unit's span and the doc comments directly above `outer`.

    Walks back over `leading_types` siblings and, with `doc_comments`, over comments that sit
    on their own lines with no blank line between them and the unit.
    """
    first = outer
    comments: list[Node] = []
    if not spec.leading_types and not spec.doc_comments:
        return first, comments
    prev = outer.prev_sibling
    while prev is not None:
        is_leading = prev.type in spec.leading_types
        is_doc_comment = (
            not is_leading
            and spec.doc_comments
            and prev.type == "comment"
            and prev.end_point.row + 1 >= first.start_point.row
            and _own_line(prev, source)
        )
        if not (is_leading or is_doc_comment):
            break
        if is_doc_comment:
            comments.append(prev)
        first = prev
        prev = prev.prev_sibling
    comments.reverse()
    return first, comments


def _end_of(outer: Node, source: bytes, spec: LanguageSpec) -> Node:
    """The node whose end is the unit's end: `outer` itself unless its last line may hold a
    trailing comment, in which case its last non-comment token (the exact, slower walk)."""
    newline = source.rfind(b"\n", outer.start_byte, outer.end_byte)
    tail = source[newline + 1 if newline >= 0 else outer.start_byte : outer.end_byte]
    return _last_token(outer) if spec.comment_pattern[:1] in tail else outer


def _line_span(start_node: Node, end_node: Node) -> tuple[int, int]:
    start = start_node.start_point.row + 1
    end_row, end_col = end_node.end_point.row, end_node.end_point.column
    end = end_row + 1 if end_col > 0 or end_row == start_node.start_point.row else end_row
    return start, max(start, end)


@lru_cache(maxsize=64)
def _indent_regex(indent: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(indent), re.MULTILINE)


def _unit_code(start_byte: int, end_byte: int, source: bytes) -> str:
    """The text from `start_byte` to `end_byte`, dedented by its first line's indentation."""
    line_start = source.rfind(b"\n", 0, start_byte) + 1
    prefix = source[line_start:start_byte]
    body = source[start_byte:end_byte].decode("utf-8", errors="replace")
    if not prefix or prefix.strip(b" \t"):
        return body
    return _indent_regex(prefix.decode("utf-8")).sub("", body)


def norm_hash(spec: LanguageSpec, source: bytes, start: int, end: int, name: str) -> str:
    """Hash of [start, end) without comments, whitespace runs or the unit's own name.

    Comments are removed lexically (a `#` or `//` inside a string cuts the rest of its line
    too); that is consistent across copies, which is all a clone hash needs.
    """
    text = source[start:end]
    if spec.comment_pattern[:1] in text:
        text = spec.comment_regex.sub(b"", text)
    text = b" ".join(text.split()).replace(name.encode("utf-8"), b"\x00", 1)
    return hashlib.blake2b(spec.name.encode() + b"\x00" + text, digest_size=8).hexdigest()


@dataclass
class _Def:
    node: Node
    capture: str
    parent: _Def | None
    uncertain: bool
    name: str | None = None
    qualname: str | None = None
    qualified: bool = False


def _make_def(
    node: Node,
    capture: str,
    parent: _Def | None,
    uncertain: bool,
    source: bytes,
    spec: LanguageSpec,
) -> _Def:
    d = _Def(node, capture, parent, uncertain, spec.name_of(node, source))
    if d.name is None or (parent is not None and parent.qualname is None):
        d.qualname = None
    elif parent is None:
        prefix = spec.qualifier(node, source) if spec.qualifier else None
        d.qualified = prefix is not None
        d.qualname = f"{prefix}.{d.name}" if prefix else d.name
    elif parent.capture in ("class", "scope") or not spec.locals_marker:
        d.qualname = f"{parent.qualname}.{d.name}"
    else:
        d.qualname = f"{parent.qualname}.{spec.locals_marker}.{d.name}"
    return d


def _collect(
    captures: dict[str, list[Node]], source: bytes, spec: LanguageSpec, clean: bool
) -> list[_Def]:
    """Definitions in source order, each linked to its nearest enclosing definition.

    In an error-free tree byte ranges nest exactly like the tree, so a stack finds parents;
    otherwise each definition walks up its ancestors and is `uncertain` below an ERROR node.
    """
    nodes: dict[int, tuple[Node, str]] = {}
    for capture in _UNIT_CAPTURES:
        for node in captures.get(capture, []):
            nodes.setdefault(node.id, (node, capture))
    ordered = sorted(nodes.values(), key=lambda nc: (nc[0].start_byte, -nc[0].end_byte))
    if clean:
        found: list[_Def] = []
        stack: list[_Def] = []
        for node, capture in ordered:
            while stack and stack[-1].node.end_byte <= node.start_byte:
                stack.pop()
            d = _make_def(node, capture, stack[-1] if stack else None, False, source, spec)
            found.append(d)
            stack.append(d)
        return found
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
        defs[node.id] = _make_def(node, capture, parent, uncertain, source, spec)
        return defs[node.id]

    return [resolve(node, capture) for node, capture in ordered]


def _kind(d: _Def) -> ChunkKind:
    if d.capture == "class":
        return "class"
    if d.capture == "method" or d.qualified:
        return "method"
    if d.parent is not None and d.parent.capture == "class":
        return "method"
    return "function"


def _units_from_tree(root: Node, source: bytes, spec: LanguageSpec, line_offset: int) -> list[Unit]:
    captures = QueryCursor(spec.compiled_query).captures(root)
    units: list[Unit] = []
    for d in _collect(captures, source, spec, clean=not root.has_error):
        if d.capture == "scope":
            continue
        outer = spec.outer(d.node)
        if d.uncertain or d.qualname is None or d.name is None or outer.has_error:
            continue
        first, docs = leading_nodes(outer, spec, source)
        last = _end_of(outer, source, spec)
        start, end = _line_span(first, last)
        units.append(
            Unit(
                kind=_kind(d),
                name=d.name,
                qualname=d.qualname,
                signature=spec.signature(d.node, source),
                docstring=spec.docstring(d.node, source, docs),
                code=_unit_code(first.start_byte, last.end_byte, source),
                start_line=start + line_offset,
                end_line=end + line_offset,
                norm_hash=norm_hash(spec, source, outer.start_byte, last.end_byte, d.name),
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

    On a syntax error the cleanly parsed units are returned and one line describing the
    problem is appended to `warnings` (the caller reports it) or, without a list, logged.
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
        if warnings is None:
            log.warning("mining.syntax_error", path=path, line=line, units_kept=len(units))
        else:
            warnings.append(f"{path}:{line}: syntax error; kept {len(units)} cleanly parsed units")
    return units
