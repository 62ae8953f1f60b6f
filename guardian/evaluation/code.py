"""Code-writing metrics: syntax validity (tree-sitter) and CodeBLEU (the `codebleu` package).

`codebleu` 0.7.0 declares `tree-sitter>=0.22,<0.23` but only uses the API that 0.25+ still
has (`Language(ptr)`, `parser.language = ...`), so it is installed with `--no-deps` and
imported inside `code_bleu`; without it `code_bleu` returns None. Its combined score
substitutes 1 for a data-flow match of 0 (`dataflow_match_score or 1`, k4black/codebleu#59),
which hands an unrelated prediction a free 0.25, so the score is recombined here from its
four components with the CodeXGLUE formula. A reference with no data-flow at all leaves that
component undefined; it is then left out and the other weights renormalised.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import tree_sitter_go
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_typescript
from tree_sitter import Language, Parser

from guardian.core.schema import ANSWER_TAG

_WEIGHTS = (0.25, 0.25, 0.25, 0.25)  # n-gram, weighted n-gram, syntax, data-flow
# An opening fence, its optional info string (language tag) line, the code, a closing fence.
_FENCE = re.compile(r"```(?:[\w+.#-]*[ \t]*\n)?(.*?)(?:```|\Z)", re.DOTALL)
_CODEBLEU_LANGUAGES = frozenset({"python", "javascript", "go"})  # codebleu has no TypeScript
_NO_DATAFLOW_WARNING = "WARNING: There is no reference data-flows"


# The mining package builds its Languages the same way (LanguageSpec.language), but evaluation
# is a sibling layer-2 package and may not import it (DESIGN.md §2).
_GRAMMARS: dict[str, Callable[[], Any]] = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "go": tree_sitter_go.language,
}


@cache
def _language(language: str) -> Language | None:
    """The tree-sitter Language for a language name, or None when there is no grammar."""
    grammar = _GRAMMARS.get(language)
    return Language(grammar()) if grammar is not None else None


def syntax_valid(code: str, language: str) -> bool | None:
    """Whether the code parses with no ERROR or MISSING node (blank code is not valid).

    None when the language has no grammar here.
    """
    lang = _language(language)
    if lang is None:
        return None
    if not code.strip():
        return False
    # `has_error` is true when the tree holds an ERROR node or a MISSING (inserted) node.
    return not Parser(lang).parse(code.encode("utf-8")).root_node.has_error


def extract_code(answer: str) -> str:
    """The code part of a model answer, stripped: after its last answer tag if it has one,
    the first fenced block of that text (an unclosed fence runs to the end), else the text.
    """
    head, sep, tail = answer.rpartition(ANSWER_TAG)
    text = tail if sep else answer
    fenced = _FENCE.search(text)
    return (fenced.group(1) if fenced else text).strip()


class _DropNoDataflowWarning(logging.Filter):
    """Drops codebleu's root-logger warning for a reference without data-flow (handled here)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NO_DATAFLOW_WARNING)


def code_bleu(prediction: str, reference: str, language: str) -> float | None:
    """CodeBLEU of the prediction against the reference in [0, 1], equal weights.

    None for a language codebleu does not cover, a blank reference, or codebleu not installed.
    """
    lang = _language(language)
    if lang is None or language not in _CODEBLEU_LANGUAGES or not reference.strip():
        return None
    if prediction.strip() == reference.strip():
        return 1.0  # codebleu's unsmoothed n-grams score a short identical line ~0.3
    try:
        from codebleu import calc_codebleu
        from codebleu.dataflow_match import corpus_dataflow_match
    except ImportError:
        return None
    quiet = _DropNoDataflowWarning()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        parts = calc_codebleu([reference], [prediction], language, weights=_WEIGHTS)
        # A reference matched against itself scores 0 only when it has no data-flow.
        has_dataflow = bool(corpus_dataflow_match([[reference]], [reference], language, lang))
    finally:
        root.removeFilter(quiet)
    scores = [
        parts["ngram_match_score"],
        parts["weighted_ngram_match_score"],
        parts["syntax_match_score"],
        parts["dataflow_match_score"],
    ]
    pairs = list(zip(_WEIGHTS, scores, strict=True))
    if not has_dataflow:
        pairs = pairs[:3]
    total = sum(w for w, _ in pairs)
    return min(1.0, max(0.0, sum(w * float(s) for w, s in pairs) / total))


def as_unit(body: str, signature: str, language: str) -> str:
    """A function body with its signature around it, so it parses as a whole definition."""
    head = signature.strip()
    if language == "python":
        return f"{head.rstrip(':')}:\n{body}"
    if body.lstrip().startswith("{"):
        return f"{head} {body.strip()}"
    unit = f"{head} {{\n{body}\n}}"
    return f"package p\n\n{unit}" if language == "go" else unit


def code_scores(answer: str, reference: str, signature: str, language: str) -> dict[str, Any]:
    """One code-writing item: CodeBLEU of the answer's code against the reference's, and
    whether it parses, as the body asked for (inside its signature) or as a whole definition
    (an answer that restates the signature); None when there is no grammar."""
    code = extract_code(answer)
    valid: bool | None
    if _language(language) is None:
        valid = None
    else:
        valid = bool(code) and bool(
            syntax_valid(as_unit(code, signature, language), language)
            or syntax_valid(code, language)
        )
    return {"codebleu": code_bleu(code, extract_code(reference), language), "syntax_valid": valid}
