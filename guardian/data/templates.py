"""Synthesis templates: one YAML file per question type, rendered from mined facts.

A chunk-scope template turns one `Chunk` into one question by filling `{field}` placeholders
from facts derived from the chunk (`FIELDS`); a module-scope template does the same from the
outline of one file (`MODULE_FIELDS`). A template renders nothing when a fact it needs is
missing, so every answer states only what the chunk itself says. `cot`/`answer` give the
RAFT form of the answer: reasoning that quotes the oracle between quote markers.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardian.core.schema import BEGIN_QUOTE, END_QUOTE, Chunk, ChunkKind, Sample
from guardian.core.yamlfile import validation_problems
from guardian.data.docfacts import body_of, module_name, summary_of
from guardian.data.fields import (
    DOC_FIELDS,
    FIELDS,
    MODULE_FIELDS,
    chunk_fields,
    module_fields,
)
from guardian.errors import ConfigError

__all__ = [
    "DOC_FIELDS",
    "BEGIN_QUOTE",
    "END_QUOTE",
    "FIELDS",
    "MODULE_FIELDS",
    "Phrasing",
    "Rendered",
    "Template",
    "body_of",
    "chunk_fields",
    "fill",
    "load_template",
    "fill_phrasings",
    "load_templates",
    "module_fields",
    "module_name",
    "placeholders",
    "render",
    "summary_of",
]

_CODE_FIELDS = frozenset({"code", "body"})
_TEXT_KEYS: tuple[Literal["instruction", "input", "output", "cot", "answer"], ...] = (
    "instruction",
    "input",
    "output",
    "cot",
    "answer",
)
_ALL_KINDS: list[ChunkKind] = ["function", "method", "class"]


class Phrasing(BaseModel):
    """Another wording of a template's question and answer (same facts, different words)."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1)
    output: str = Field(min_length=1)
    cot: str | None = None
    answer: str | None = None


class Template(BaseModel):
    """One question type: its scope, the chunks it applies to, the facts it needs, its texts.

    `input` is the question and `output` the plain answer; `cot` (reasoning quoting the oracle
    between quote markers) and `answer` (the final answer, default `output`) are the RAFT form.
    `context_code` puts the oracle's code into its RAFT context document.
    """

    model_config = ConfigDict(extra="forbid")

    question_type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    scope: Literal["chunk", "module"] = "chunk"
    requires: list[str] = Field(default_factory=list)
    kinds: list[ChunkKind] = Field(default_factory=lambda: list(_ALL_KINDS), min_length=1)
    instruction: str | None = None
    input: str = Field(min_length=1)
    output: str = Field(min_length=1)
    cot: str | None = None
    answer: str | None = None
    context_code: bool = False
    max_code_lines: int | None = Field(default=None, ge=1)
    variants: list[Phrasing] = Field(default_factory=list)
    repeat: int = Field(default=1, ge=1, description="samples per unit, each worded differently")
    closed_book: bool = Field(
        default=False, description="with RAFT on, also emit the plain (no context) sample"
    )

    def phrasings(self) -> list[Phrasing]:
        """The template's own wording first, then its variants."""
        own = Phrasing(input=self.input, output=self.output, cot=self.cot, answer=self.answer)
        return [own, *self.variants]

    def fields_used(self) -> frozenset[str]:
        """Every placeholder name the template's texts (all phrasings) refer to."""
        texts = [getattr(ph, key, None) for ph in self.phrasings() for key in _TEXT_KEYS]
        return _placeholders_of((self.instruction, *texts))

    def needs(self) -> frozenset[str]:
        """Every fact the template reads or requires (the fields that must be non-empty)."""
        return self.fields_used() | frozenset(self.requires)


@dataclass(frozen=True)
class Rendered:
    """A filled template: the question, the plain answer and the RAFT reasoning and answer."""

    question_type: str
    instruction: str | None
    question: str
    output: str
    cot: str | None
    answer: str


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


@functools.lru_cache(maxsize=256)
def _placeholders_of(texts: tuple[str | None, ...]) -> frozenset[str]:
    return frozenset(name for text in texts if text is not None for name in placeholders(text))


def _check_texts(where: str, texts: dict[str, str | None], known: set[str]) -> list[str]:
    problems: list[str] = []
    for key, text in texts.items():
        if text is None:
            continue
        try:
            used = placeholders(text)
        except ValueError as exc:
            problems.append(f"{where}{key}: bad template ({exc})")
            continue
        problems.extend(f"{where}{key}: unknown field '{name}'" for name in sorted(used - known))
    cot, answer = texts.get("cot"), texts.get("answer")
    if cot is not None:
        opened, closed = cot.count(BEGIN_QUOTE), cot.count(END_QUOTE)
        if opened == 0 or opened != closed:
            problems.append(
                f"{where}cot: needs balanced {BEGIN_QUOTE} ... {END_QUOTE} pairs "
                f"(found {opened} and {closed})"
            )
    elif answer is not None:
        problems.append(f"{where}answer: only allowed together with cot")
    return problems


def _check_fields(path: Path, tpl: Template) -> list[str]:
    known = set(FIELDS if tpl.scope == "chunk" else MODULE_FIELDS)
    problems = _check_texts(f"{path}: ", {k: getattr(tpl, k) for k in _TEXT_KEYS}, known)
    for n, ph in enumerate(tpl.variants):
        texts = {k: getattr(ph, k) for k in ("input", "output", "cot", "answer")}
        problems += _check_texts(f"{path}: variants.{n}.", texts, known)
    problems.extend(
        f"{path}: requires: unknown field '{name}'" for name in tpl.requires if name not in known
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


def fill_phrasings(
    template: Template,
    fields: dict[str, str],
    *,
    code_lines: int = 0,
    max_code_lines: int | None = None,
) -> list[Rendered]:
    """Every phrasing of a template filled from its facts; [] when a needed fact is empty.

    Also [] when the code is too long: the template's own `max_code_lines` always applies,
    the `max_code_lines` argument only to templates that show `{code}` or `{body}`.
    """
    used = template.fields_used()
    if any(not fields.get(name, "").strip() for name in template.needs()):
        return []
    if template.max_code_lines is not None and code_lines > template.max_code_lines:
        return []
    if max_code_lines is not None and used & _CODE_FIELDS and code_lines > max_code_lines:
        return []
    instruction = (
        template.instruction.format_map(fields).strip()
        if template.instruction is not None
        else None
    )
    out: list[Rendered] = []
    for ph in template.phrasings():
        output = ph.output.format_map(fields).strip()
        out.append(
            Rendered(
                question_type=template.question_type,
                instruction=instruction,
                question=ph.input.format_map(fields).strip(),
                output=output,
                cot=ph.cot.format_map(fields).strip() if ph.cot is not None else None,
                answer=ph.answer.format_map(fields).strip() if ph.answer else output,
            )
        )
    return out


def fill(
    template: Template,
    fields: dict[str, str],
    *,
    code_lines: int = 0,
    max_code_lines: int | None = None,
) -> Rendered | None:
    """The template's own phrasing filled from its facts, or None (see `fill_phrasings`)."""
    filled = fill_phrasings(template, fields, code_lines=code_lines, max_code_lines=max_code_lines)
    return filled[0] if filled else None


def render(
    template: Template,
    chunk: Chunk,
    *,
    max_code_lines: int | None = None,
    min_docstring_chars: int = 0,
) -> Sample | None:
    """The plain (no-context) sample a chunk-scope template makes from a chunk, or None."""
    if template.scope != "chunk" or chunk.kind not in template.kinds:
        return None
    fields = chunk_fields(chunk, template.needs(), min_docstring_chars=min_docstring_chars)
    filled = fill(
        template,
        fields,
        code_lines=len(chunk.code.strip("\n").splitlines()),
        max_code_lines=max_code_lines,
    )
    if filled is None:
        return None
    return Sample(
        instruction=filled.instruction,
        input=filled.question,
        output=filled.output,
        metadata={
            "chunk_id": chunk.id,
            "path": chunk.path,
            "commit": chunk.commit,
            "qualname": chunk.qualname,
            "question_type": template.question_type,
        },
    )
