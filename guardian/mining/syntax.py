"""Syntax-tree text helpers shared by the language specs: node text, one-line headers, resync."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from tree_sitter import Node

_OPENERS = frozenset({"(", "[", "{"})
_CLOSERS = frozenset({")", "]", "}"})
_NO_SPACE_BEFORE = _CLOSERS | {",", ":", ";"}
_NEEDS_TOKENS = re.compile(rb"[\n\r\t#]|//|/\*|  |[(\[{] | [)\]},:;]")


def node_text(node: Node, source: bytes) -> str:
    """The node's source text, decoded as UTF-8."""
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _leaves(node: Node, stop: int, skip: frozenset[str]) -> Iterator[Node]:
    if node.is_extra or node.type in skip or node.start_byte >= stop:
        return
    if node.child_count == 0 or "string" in node.type:
        yield node
        return
    for child in node.children:
        if child.start_byte >= stop:
            return
        yield from _leaves(child, stop, skip)


def header_signature(
    node: Node,
    source: bytes,
    body_field: str = "body",
    *,
    stop: int | None = None,
    skip: frozenset[str] = frozenset(),
) -> str:
    """The definition's header (its tokens before `stop`, default its body) as one line.

    Comments and `skip` node types are dropped, gaps collapse to one space, brackets hug their
    contents, a trailing comma left by a multi-line layout is removed, and a final `:` is
    stripped.
    """
    if stop is None:
        body = node.child_by_field_name(body_field)
        stop = body.start_byte if body is not None else node.end_byte
    raw = source[node.start_byte : stop].rstrip()
    if not _NEEDS_TOKENS.search(raw) and not (skip and any(c.type in skip for c in node.children)):
        text = raw.decode("utf-8", errors="replace")
        return text[:-1].rstrip() if text.endswith(":") else text
    tokens: list[Node] = []
    for child in node.children:
        if child.start_byte >= stop:
            break
        tokens.extend(_leaves(child, stop, skip))
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


def line_resync(pattern: bytes) -> Callable[[bytes, int, int], list[int]]:
    """A `resync` that restarts parsing at every column-0 line matching `pattern`."""
    starts_re = re.compile(pattern, re.MULTILINE)

    def resync(source: bytes, start: int, end: int) -> list[int]:
        lines_from = source.rfind(b"\n", 0, start) + 1
        starts = [m.start() for m in starts_re.finditer(source, lines_from, end)]
        if not starts or starts[0] > start:
            starts.insert(0, lines_from)
        return starts

    return resync
