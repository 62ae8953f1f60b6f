"""Doc comments of brace languages: the comment block right above a unit, cleaned into text.

JS/TS (`/** ... */`, `// ...`) and Go (`// ...`) keep documentation in comments, not in the
body, so their docstring is the comment block the core found above the unit. Tool directives
(`//go:generate`, `// eslint-disable-next-line`, `// @ts-ignore`) are not documentation.
"""

from __future__ import annotations

import inspect
import re

from tree_sitter import Node

from guardian.mining.syntax import node_text

_DIRECTIVE = re.compile(
    r"^(?://(?:go:|nolint|line |export )|//\s*(?:eslint|@ts-|prettier-ignore|istanbul|tslint)"
    r"|/\*\s*(?:eslint|istanbul|prettier|global |tslint))"
)


def _block_lines(text: str) -> list[str]:
    body = text[2:-2] if text.endswith("*/") else text[2:]
    if body.startswith("*"):
        body = body[1:]
    lines = []
    for raw in body.split("\n"):
        line = raw.strip()
        if line.startswith("*"):
            line = line[1:]
            if line.startswith(" "):
                line = line[1:]
        lines.append(line.rstrip())
    return lines


def _line_comment(text: str) -> str:
    body = text[2:].lstrip("/")
    return body[1:] if body.startswith(" ") else body


def comment_docstring(node: Node, source: bytes, leading: list[Node]) -> str | None:
    """The text of the doc comments above a unit, without comment markers; None when absent."""
    lines: list[str] = []
    for comment in leading:
        text = node_text(comment, source).rstrip("\r")
        if _DIRECTIVE.match(text):
            continue
        if text.startswith("/*"):
            lines.extend(_block_lines(text))
        else:
            lines.append(_line_comment(text).rstrip())
    doc = inspect.cleandoc("\n".join(lines)) if lines else ""
    return doc or None
