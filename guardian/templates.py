"""Synthesis templates: one YAML file per question type, rendered from mined chunks.

A template turns one `Chunk` into one `Sample` by filling `{field}` placeholders from a fixed
set of facts derived from the chunk (see `FIELDS`). A template renders nothing when a fact it
needs is missing, so every answer states only what the chunk itself says.
"""

from __future__ import annotations

import ast
import re
import string
import textwrap
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardian.errors import ConfigError
from guardian.records import Chunk, ChunkKind, Sample
from guardian.yamlfile import validation_problems

__all__ = [
    "FIELDS",
    "Template",
    "body_of",
    "chunk_fields",
    "load_template",
    "load_templates",
    "module_name",
    "placeholders",
    "render",
    "summary_of",
]

FIELDS: tuple[str, ...] = (
    "qualname",
    "name",
    "module",
    "path",
    "kind",
    "signature",
    "docstring",
    "summary",
    "code",
    "body",
    "start_line",
    "end_line",
    "language",
)
_CODE_FIELDS = frozenset({"code", "body"})
_TEXT_KEYS: tuple[Literal["instruction", "input", "output"], ...] = (
    "instruction",
    "input",
    "output",
)
_SECTION_RE = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Attributes|See Also|Warnings?|Todo)\s*:?\s*$|^\s*-{3,}\s*$",
    re.IGNORECASE,
)
_ALL_KINDS: list[ChunkKind] = ["function", "method", "class"]
_DefNode = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


class Template(BaseModel):
    """One question type: which chunks it applies to, the facts it needs, and its texts."""

    model_config = ConfigDict(extra="forbid")

    question_type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    requires: list[str] = Field(default_factory=list)
    kinds: list[ChunkKind] = Field(default_factory=lambda: list(_ALL_KINDS), min_length=1)
    instruction: str | None = None
    input: str = Field(min_length=1)
    output: str = Field(min_length=1)
    max_code_lines: int | None = Field(default=None, ge=1)

    def fields_used(self) -> set[str]:
        """Every placeholder name the template's texts refer to."""
        used: set[str] = set()
        for key in _TEXT_KEYS:
            text = getattr(self, key)
            if text is not None:
                used |= placeholders(text)
        return used


def placeholders(text: str) -> set[str]:
    """The `{field}` names in a template text; raises ValueError on malformed braces."""
    names: set[str] = set()
    for _literal, field_name, spec, conversion in string.Formatter().parse(text):
        if field_name is None:
            continue
        if spec or conversion:
            raise ValueError(f"placeholder '{{{field_name}}}' may not use a format spec")
        names.add(field_name)
    return names


def _check_fields(path: Path, tpl: Template) -> list[str]:
    problems: list[str] = []
    for key in _TEXT_KEYS:
        text = getattr(tpl, key)
        if text is None:
            continue
        try:
            used = placeholders(text)
        except ValueError as exc:
            problems.append(f"{path}: {key}: bad template ({exc})")
            continue
        problems.extend(
            f"{path}: {key}: unknown field '{name}'" for name in sorted(used - set(FIELDS))
        )
    problems.extend(
        f"{path}: requires: unknown field '{name}'" for name in tpl.requires if name not in FIELDS
    )
    return problems


def _fail(problems: list[str]) -> ConfigError:
    extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return ConfigError(problems[0] + extra, problems)


def load_template(path: Path) -> Template:
    """Load and validate one template file; every problem is a ConfigError naming the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        tpl = Template.model_validate(raw)
    except ValidationError as exc:
        raise _fail(validation_problems(str(path), exc)) from None
    problems = _check_fields(path, tpl)
    if problems:
        raise _fail(problems)
    return tpl


def load_templates(directory: Path) -> list[Template]:
    """Load every `*.yaml`/`*.yml` template in a directory, sorted by question type."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: templates directory not found")
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
    if not files:
        raise ConfigError(f"{directory}: no template files (*.yaml) found")
    seen: dict[str, Path] = {}
    templates: list[Template] = []
    for path in files:
        tpl = load_template(path)
        if tpl.question_type in seen:
            raise ConfigError(
                f"{path}: question_type '{tpl.question_type}' already defined in "
                f"{seen[tpl.question_type]}"
            )
        seen[tpl.question_type] = path
        templates.append(tpl)
    return sorted(templates, key=lambda t: t.question_type)


def module_name(path: str) -> str:
    """Dotted module path of a file: `pkg/mod.py` -> `pkg.mod`, `pkg/__init__.py` -> `pkg`."""
    parts = list(Path(path).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def summary_of(docstring: str | None) -> str:
    """First paragraph of a docstring, joined onto one line; stops at a section header."""
    if not docstring:
        return ""
    lines: list[str] = []
    for line in docstring.strip().splitlines():
        if _SECTION_RE.match(line) or (lines and not line.strip()):
            break
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines)


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


def chunk_fields(chunk: Chunk) -> dict[str, str]:
    """Every placeholder value for a chunk; a missing fact is the empty string."""
    return {
        "qualname": chunk.qualname,
        "name": chunk.name,
        "module": module_name(chunk.path),
        "path": chunk.path,
        "kind": chunk.kind,
        "signature": chunk.signature.strip(),
        "docstring": (chunk.docstring or "").strip(),
        "summary": summary_of(chunk.docstring),
        "code": chunk.code.strip("\n"),
        "body": body_of(chunk),
        "start_line": str(chunk.start_line),
        "end_line": str(chunk.end_line),
        "language": chunk.language,
    }


def render(
    template: Template,
    chunk: Chunk,
    *,
    max_code_lines: int | None = None,
    min_docstring_chars: int = 0,
) -> Sample | None:
    """Fill a template from a chunk; None when the chunk lacks a fact the template needs.

    A docstring shorter than `min_docstring_chars` counts as missing. The template's own
    `max_code_lines` always applies; the `max_code_lines` argument only to templates that
    show `{code}` or `{body}`.
    """
    if chunk.kind not in template.kinds:
        return None
    fields = chunk_fields(chunk)
    if len(fields["docstring"]) < min_docstring_chars:
        fields["docstring"] = fields["summary"] = ""
    used = template.fields_used()
    if any(not fields[name].strip() for name in used | set(template.requires)):
        return None
    n_lines = len(fields["code"].splitlines())
    if template.max_code_lines is not None and n_lines > template.max_code_lines:
        return None
    if max_code_lines is not None and used & _CODE_FIELDS and n_lines > max_code_lines:
        return None
    return Sample(
        instruction=(
            template.instruction.format_map(fields).strip()
            if template.instruction is not None
            else None
        ),
        input=template.input.format_map(fields).strip(),
        output=template.output.format_map(fields).strip(),
        metadata={
            "chunk_id": chunk.id,
            "path": chunk.path,
            "commit": chunk.commit,
            "qualname": chunk.qualname,
            "question_type": template.question_type,
        },
    )
