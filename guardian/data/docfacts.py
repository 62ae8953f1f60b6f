"""Facts read off a chunk without running it: docstring sections, parameters, how to call it.

Every fact is either a verbatim span of the chunk's docstring (the `*_quote` forms, so RAFT
answers can quote them) or derived from its signature alone, so templates built on them state
only what the chunk says. Python gets the full set; other languages get the docstring facts.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Literal

from guardian.core.schema import Chunk

__all__ = [
    "body_of",
    "call_example",
    "decorators",
    "doc_section",
    "import_line",
    "module_name",
    "parameter_names",
    "parameters_text",
    "return_annotation",
    "section_text",
    "summary_of",
    "summary_quote",
]

Section = Literal["returns", "raises"]
_SECTION_RE = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Attributes|See Also|Warnings?|Todo)\s*:?\s*$|^\s*-{3,}\s*$",
    re.IGNORECASE,
)
_NAMES: dict[Section, frozenset[str]] = {
    "returns": frozenset({"returns", "return", "yields", "yield"}),
    "raises": frozenset({"raises", "raise", "exceptions", "except"}),
}
_SPHINX_NAMES: dict[Section, frozenset[str]] = {
    "returns": frozenset({"returns", "return", "yields", "yield", "rtype", "ytype"}),
    "raises": frozenset({"raises", "raise", "except", "exception"}),
}
_GOOGLE = re.compile(r"^(?P<indent>[ \t]*)(?P<name>[A-Za-z]+)[ \t]*:(?P<rest>.*)$")
_RULE = re.compile(r"^\s*[-=]{3,}\s*$")
_SPHINX = re.compile(r"^(?P<indent>[ \t]*):(?P<name>[A-Za-z]+)\b[^:\n]*:")
_SPHINX_FIELD = re.compile(r":(?:raises?|except|exception)\s+([^:\n]+):|:(?:returns?|yields?):")
_SPHINX_TYPE = re.compile(r"^\s*:[ry]type:(.*)$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_DefNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def module_name(path: str) -> str:
    """Dotted module path of a file: `pkg/mod.py` -> `pkg.mod`, `pkg/__init__.py` -> `pkg`."""
    stem, dot, suffix = path.rpartition(".")
    parts = [p for p in (stem if dot and "/" not in suffix else path).split("/") if p]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _first_paragraph(docstring: str) -> list[str]:
    lines: list[str] = []
    for line in docstring.strip().splitlines():
        if _SECTION_RE.match(line) or (lines and not line.strip()):
            break
        if line.strip() or lines:
            lines.append(line)
    return lines


def summary_of(docstring: str | None) -> str:
    """First paragraph of a docstring, joined onto one line; stops at a section header."""
    if not docstring:
        return ""
    return " ".join(line.strip() for line in _first_paragraph(docstring))


def summary_quote(docstring: str | None) -> str:
    """The first paragraph of a docstring exactly as written (a verbatim span of it)."""
    if not docstring:
        return ""
    return "\n".join(_first_paragraph(docstring)).strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_block(lines: list[str], i: int, rest: str) -> str:
    depth = _indent(lines[i])
    j = i + 1
    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > depth):
        j += 1
    return "\n".join([rest, *lines[i + 1 : j]]).strip()


def _numpy_block(lines: list[str], i: int) -> str:
    j = i + 2
    while j < len(lines):
        is_header = j + 1 < len(lines) and lines[j].strip() and _RULE.match(lines[j + 1])
        if is_header or lines[j].startswith(".. "):
            break
        j += 1
    return "\n".join(lines[i + 2 : j]).strip()


def _sphinx_block(lines: list[str], i: int, names: frozenset[str]) -> str:
    depth = _indent(lines[i])
    j = i + 1
    while j < len(lines) and lines[j].strip():
        field = _SPHINX.match(lines[j])
        if field is not None and field["name"].lower() not in names:
            break
        if field is None and _indent(lines[j]) <= depth:
            break
        j += 1
    return "\n".join(lines[i:j]).strip()


def doc_section(docstring: str | None, which: Section) -> str:
    """The verbatim text of a docstring's Returns or Raises section ("" when it has none).

    Understands Google (`Returns:`), NumPy (`Returns` over a `-------` rule) and Sphinx
    (`:returns:`, `:raises ValueError:`) styles; the first section found wins.
    """
    if not docstring:
        return ""
    lines = docstring.splitlines()
    for i, line in enumerate(lines):
        google = _GOOGLE.match(line)
        if google is not None and google["name"].lower() in _NAMES[which]:
            block = _google_block(lines, i, google["rest"])
            if block:
                return block
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip().lower() in _NAMES[which] and _RULE.match(nxt):
            block = _numpy_block(lines, i)
            if block:
                return block
        sphinx = _SPHINX.match(line)
        if sphinx is not None and sphinx["name"].lower() in _SPHINX_NAMES[which] - {"rtype"}:
            return _sphinx_block(lines, i, _SPHINX_NAMES[which])
    return ""


def section_text(block: str) -> str:
    """A docstring section on one line, Sphinx field markers turned into plain text."""
    lines = [
        f"(type: {m[1].strip()})" if (m := _SPHINX_TYPE.match(line)) else line
        for line in block.splitlines()
    ]
    return " ".join(
        _SPHINX_FIELD.sub(lambda m: f"{m[1]}:" if m[1] else "", "\n".join(lines)).split()
    )


def _parse_def(code: str) -> tuple[list[str], _DefNode] | None:
    """Parse a chunk's code into (dedented lines, its def/class node), or None if impossible.

    Miners often cut a method at the `def` keyword, leaving its first line unindented but
    the rest at their original depth, so a few first-line indents are tried.
    """
    rest = [ln for ln in code.splitlines()[1:] if ln.strip()]
    indents = sorted({len(ln) - len(ln.lstrip()) for ln in rest})
    for indent in [0, *indents]:
        text = textwrap.dedent(" " * indent + code)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        if tree.body and isinstance(tree.body[0], _DefNode):
            return text.splitlines(), tree.body[0]
    return None


def body_of(chunk: Chunk) -> str:
    """Python only: the code after the signature and docstring ("" when unavailable)."""
    if chunk.language != "python":
        return ""
    parsed = _parse_def(chunk.code)
    if parsed is None:
        return ""
    lines, node = parsed
    stmts = list(node.body)
    has_doc = (
        isinstance(stmts[0], ast.Expr)
        and isinstance(stmts[0].value, ast.Constant)
        and isinstance(stmts[0].value.value, str)
    )
    if has_doc:
        start = (stmts[0].end_lineno or stmts[0].lineno) + 1
        if len(stmts) == 1:
            return ""
    else:
        first = stmts[0]
        if first.lineno == node.lineno:
            tail = lines[first.lineno - 1][first.col_offset :]
            return "\n".join([tail, *lines[first.lineno :]]).strip("\n")
        start = first.lineno
    end = node.end_lineno or len(lines)
    return "\n".join(lines[start - 1 : end]).strip("\n")


def decorators(chunk: Chunk) -> list[str]:
    """Names of the decorators above a Python def (`property`, `x.setter`, ...)."""
    names: list[str] = []
    for line in chunk.code.splitlines():
        text = line.strip()
        if text.startswith("@"):
            names.append(text[1:].split("(", 1)[0].strip())
        elif text.startswith(("def ", "async def ", "class ")):
            break
    return names


def _arguments(chunk: Chunk) -> list[tuple[str, ast.arg, ast.expr | None]] | None:
    """(kind, arg, default) for each parameter of a Python def, `self`/`cls` dropped."""
    if chunk.language != "python" or chunk.kind == "class":
        return None
    try:
        tree = ast.parse(chunk.signature.strip().rstrip(":") + ":\n    pass\n")
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    out: list[tuple[str, ast.arg, ast.expr | None]] = [
        ("pos", a, d) for a, d in zip(positional, [*defaults, *args.defaults], strict=True)
    ]
    if args.vararg is not None:
        out.append(("*", args.vararg, None))
    out.extend(("kw", a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True))
    if args.kwarg is not None:
        out.append(("**", args.kwarg, None))
    bound = chunk.kind == "method" and "staticmethod" not in decorators(chunk)
    if bound and out and out[0][0] == "pos" and out[0][1].arg in ("self", "cls"):
        out = out[1:]
    return out


def _sentence(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def parameter_names(chunk: Chunk) -> list[str] | None:
    """Names of a Python def's parameters (`self`/`cls` dropped); None when unknown."""
    args = _arguments(chunk)
    return None if args is None else [arg.arg for _kind, arg, _default in args]


def return_annotation(chunk: Chunk) -> str:
    """A Python def's return annotation as written (`Decimal`), "" for none or `None`."""
    if chunk.language != "python" or chunk.kind == "class":
        return ""
    try:
        tree = ast.parse(chunk.signature.strip().rstrip(":") + ":\n    pass\n")
    except SyntaxError:
        return ""
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.returns is None:
        return ""
    text = ast.unparse(node.returns)
    return "" if text == "None" else text


def parameters_text(chunk: Chunk) -> str:
    """The parameters of a Python def as a sentence (`a: int` and `b: str = 'x'`)."""
    args = _arguments(chunk)
    if args is None:
        return ""
    if not args:
        return "no parameters"
    items: list[str] = []
    for kind, arg, default in args:
        text = {"*": "*", "**": "**"}.get(kind, "") + arg.arg
        if arg.annotation is not None:
            text += f": {ast.unparse(arg.annotation)}"
        if default is not None:
            text += f" = {ast.unparse(default)}"
        items.append(f"`{text}`")
    return _sentence(items)


def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower().lstrip("_") or "obj"


def call_example(chunk: Chunk) -> str:
    """A call passing every required parameter by name ("" when it is not plainly callable).

    Methods are called on an instance named after the class, static and class methods on
    the class, `__init__` as the constructor; properties and other dunders get nothing.
    """
    args = _arguments(chunk)
    if args is None or "<locals>" in chunk.qualname:
        return ""
    parts: list[str] = []
    for kind, arg, default in args:
        if default is None and kind == "pos":
            parts.append(arg.arg)
        elif default is None and kind == "kw":
            parts.append(f"{arg.arg}={arg.arg}")
    call_args = f"({', '.join(parts)})"
    dunder = chunk.name.startswith("__") and chunk.name.endswith("__")
    if chunk.kind == "function":
        return "" if dunder else f"{chunk.name}{call_args}"
    owner = chunk.qualname.rsplit(".", 1)[0]
    decos = decorators(chunk)
    if any(d in ("property", "cached_property", "functools.cached_property") for d in decos):
        return ""
    if any(d.endswith((".setter", ".getter", ".deleter")) for d in decos):
        return ""
    if "staticmethod" in decos or "classmethod" in decos:
        return f"{owner}.{chunk.name}{call_args}"
    if chunk.name == "__init__":
        return f"{owner}{call_args}"
    if dunder:
        return ""
    return f"{_snake(owner.rsplit('.', 1)[-1])}.{chunk.name}{call_args}"


def import_line(chunk: Chunk, module: str) -> str:
    """`from <module> import <top-level name>` for a Python unit ("" when not importable)."""
    top = chunk.qualname.split(".", 1)[0]
    parts = module.split(".") if module else []
    if chunk.language != "python" or "<locals>" in chunk.qualname or not parts:
        return ""
    if not all(_IDENT.match(p) for p in [*parts, top]):
        return ""
    return f"from {module} import {top}"
