"""Hallucination: does an answer name code that does not exist, or quote what it was not given?

An answer is **hallucinated** when at least one of these holds:

1. **Unknown name.** A code span of the answer (text in single backticks) that looks like an
   identifier, a dotted name (`a.b.c`, optionally ending in `()`) or a file path, or a bare
   path (`dir/file.ext`) anywhere in its text, is not in the mined repo. A path (a trailing
   `:12-30` line range dropped) is known when it is a tracked file's path or a `/`-aligned
   suffix of one (`money.py` for `inventory/money.py`). An identifier or dotted name is known
   when each of its parts is a word of the mined code (any unit's code, qualname or path), a
   Python builtin or keyword, or a word of the prompt. Other spans (type expressions, prose
   in backticks) are not judged.
2. **Ungrounded quote.** Text between `##begin_quote##` and `##end_quote##` that is not in the
   prompt (whitespace-normalised). A closed-book prompt has no documents, so any quote of
   the repo there is ungrounded.

The hallucination rate is the share of generated answers that are hallucinated.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass

from guardian.core.schema import QUOTED, Chunk

__all__ = ["RepoNames", "hallucination", "unknown_names"]

_SPAN = re.compile(r"`([^`\n]+)`")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*(?:\(\))?")
_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)*\.[A-Za-z]\w*")
_BARE_PATH = re.compile(r"(?<![\w/.-])[\w.-]+(?:/[\w.-]+)+\.[A-Za-z]\w*")
_WORD = re.compile(r"\w+")
_LINES = re.compile(r":\d+(?:-\d+)?$")
_ALWAYS = frozenset(dir(builtins)) | frozenset(keyword.kwlist) | {"self", "cls"}


def _flat(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class RepoNames:
    """What exists in the mined repo: its words (from code and paths) and its file paths."""

    words: frozenset[str]
    paths: frozenset[str]

    @classmethod
    def of(cls, chunks: Iterable[Chunk]) -> RepoNames:
        """The names of a repo, from its mined chunks."""
        words: set[str] = set()
        paths: set[str] = set()
        for c in chunks:
            paths.add(c.path)
            words.update(_WORD.findall(c.code))
            words.update(_WORD.findall(c.path))
            words.update(_WORD.findall(c.qualname))
        return cls(frozenset(words), frozenset(paths))

    def knows_path(self, path: str) -> bool:
        """A tracked path, or a `/`-aligned suffix of one."""
        path = path.removeprefix("./")
        return path in self.paths or any(p.endswith("/" + path) for p in self.paths)


def _unknown(span: str, names: RepoNames, prompt_words: set[str]) -> bool:
    """Whether one code span names something the repo (and the prompt) do not have."""
    span = _LINES.sub("", span.strip())
    if "/" in span or (_PATH.fullmatch(span) and not _DOTTED.fullmatch(span)):
        return bool(_PATH.fullmatch(span)) and not names.knows_path(span)
    if not _DOTTED.fullmatch(span):
        return False  # not a name: a type expression, a literal, prose
    if names.knows_path(span):  # `money.py` is both a dotted name and a path
        return False
    parts = span.removesuffix("()").split(".")
    return any(p not in names.words and p not in _ALWAYS and p not in prompt_words for p in parts)


def hallucination(answer: str, prompt: str, names: RepoNames) -> str | None:
    """Why an answer is hallucinated (one line naming the span), or None when it is not."""
    flat_prompt = _flat(prompt)
    for quoted in QUOTED.findall(answer):
        text = _flat(quoted)
        if text and text not in flat_prompt:
            return f"quotes text not in its prompt: {text[:80]!r}"
    prompt_words = set(_WORD.findall(prompt))
    unquoted = QUOTED.sub(" ", answer)
    spans = [m.group(1) for m in _SPAN.finditer(unquoted)]
    spans += [m.group(0) for m in _BARE_PATH.finditer(_SPAN.sub(" ", unquoted))]
    for span in spans:
        if _unknown(span, names, prompt_words):
            return f"names {span.strip()!r}, which is not in the repo"
    return None


def unknown_names(answer: str, prompt: str, names: RepoNames) -> list[str]:
    """Every distinct name an answer gives that exists nowhere in the repo, the language or
    the prompt (rule 1 above, outside quotes), in order of first mention; counts what
    `hallucination` flags once."""
    prompt_words = set(_WORD.findall(prompt))
    unquoted = QUOTED.sub(" ", answer)
    spans = [m.group(1) for m in _SPAN.finditer(unquoted)]
    spans += [m.group(0) for m in _BARE_PATH.finditer(_SPAN.sub(" ", unquoted))]
    found: list[str] = []
    for span in spans:
        name = _LINES.sub("", span.strip()).removesuffix("()")
        if name not in found and _unknown(span, names, prompt_words):
            found.append(name)
    return found
