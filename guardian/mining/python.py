"""The Python LanguageSpec: defs and classes, Python `__qualname__` naming, `ast`-style docstrings.

Async defs are functions, defs whose nearest enclosing definition is a class are methods, and
the module docstring is not a unit. A decorated unit starts at its first decorator line.
"""

from __future__ import annotations

import ast
import inspect
import re

import tree_sitter_python
from tree_sitter import Node

from guardian.mining.core import LanguageSpec, header_signature, node_text

_QUERY = """
(function_definition) @function
(class_definition) @class
"""

_SIMPLE_STRING = re.compile(
    r"""(?:([rR])|[uU])?(\"\"\"|\'\'\'|\"|\')((?:(?!\2)[^\r])*)\2""", re.DOTALL
)
_STRING_TYPES = frozenset({"string", "concatenated_string", "parenthesized_expression"})
_DEF_LINE = re.compile(rb"^(?:async[ \t]+def|def|class)\b", re.MULTILINE)
_DECORATOR_CONTINUATION = re.compile(rb"^(?:@|[ \t\r]|[)\]}]|$)")


def _outer(node: Node) -> Node:
    parent = node.parent
    if parent is not None and parent.type == "decorated_definition":
        return parent
    return node


def _signature(node: Node, source: bytes) -> str:
    return header_signature(node, source, body_field="body")


def _docstring(node: Node, source: bytes, leading: list[Node]) -> str | None:
    """The cleaned docstring, matching `ast.get_docstring(clean=True)`; None when absent."""
    body = node.child_by_field_name("body")
    if body is None or not body.named_child_count:
        return None
    first: Node | None = body.named_child(0)
    while first is not None and first.is_extra:
        first = first.next_named_sibling
    if first is None or first.type != "expression_statement" or first.named_child_count != 1:
        return None
    expr = first.named_child(0)
    if expr is None:
        return None
    if expr.type not in _STRING_TYPES:
        return None
    text = node_text(expr, source)
    simple = _SIMPLE_STRING.fullmatch(text)
    if simple is not None and (simple.group(1) or "\\" not in simple.group(3)):
        return inspect.cleandoc(simple.group(3))
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(value, str):
        return None
    return inspect.cleandoc(value)


def _resync(source: bytes, start: int, end: int) -> list[int]:
    """Byte offsets of column-0 defs/classes in [start, end), each moved up over its decorators."""
    lines_from = source.rfind(b"\n", 0, start) + 1
    starts: list[int] = []
    for match in _DEF_LINE.finditer(source, lines_from, end):
        begin = match.start()
        cursor = begin
        while cursor > lines_from:
            prev_start = source.rfind(b"\n", lines_from, cursor - 1) + 1
            prev_start = max(prev_start, lines_from)
            line = source[prev_start : cursor - 1]
            if not _DECORATOR_CONTINUATION.match(line):
                break
            cursor = prev_start
            if line.startswith(b"@"):
                begin = prev_start
        starts.append(begin)
    if not starts or starts[0] > start:
        starts.insert(0, lines_from)
    return starts


SPEC = LanguageSpec(
    name="python",
    extensions=(".py",),
    grammar=tree_sitter_python.language,
    query=_QUERY,
    signature=_signature,
    docstring=_docstring,
    outer=_outer,
    locals_marker="<locals>",
    resync=_resync,
    test_globs=("test_*.py", "*_test.py", "conftest.py"),
    comment_pattern=rb"#[^\n]*",
)
