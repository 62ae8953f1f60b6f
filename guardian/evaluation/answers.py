"""Scoring answer quality: the questions people ask, marked by what the repo states.

No judge model. An answer is read with its quotes (`##begin_quote##...##end_quote##`) and
its `<ANSWER>:`/`##Reason:` labels taken out, so a quote cannot stand in for prose. Marks
per kind (each in [0, 1]):

- **explain**: 0 if collapsed, else 0.4 x named + 0.6 x the share of the item's content
  words carried (named alone when it has none);
- **howto**: 0 if collapsed, else 0.6 x named + 0.4 x a call `name(` shown;
- **where**: 1 when the symbol's file (a `/`-aligned suffix, or its dotted module) or the
  symbol itself is named, else 0;
- **usage**: 0.5 x a call shown + 0.5 x a call whose arguments fit: keyword names among the
  parameters and a count between the required ones and all of them;
- **code**: 0 if collapsed; with the repo's tests run 0.2 x parses + 0.3 x signature + 0.5 x
  passed, without them 0.4 x parses + 0.6 x signature (the right name and parameter names).

A symbol is named by its qualname (a module prefix allowed: `inventory.stock.StockLedger`),
or by its short name: as a whole token when the name is compound (`to_cents`,
`StockLedger`), in code form (`` `cancel` ``, `cancel(`, `.cancel`) when it is one plain
word that prose uses too. An answer is **collapsed** when under six words remain and it
shows no code (a bare quote and a token); only explain, howto and code answers can be.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from guardian.core.schema import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, AskItem
from guardian.evaluation.code import as_unit, extract_code, syntax_valid
from guardian.evaluation.hallucination import RepoNames, unknown_names

__all__ = ["AskScore", "answers_summary", "is_collapsed", "score_ask", "strip_markup"]

COLLAPSE_WORDS = 6  # fewer words than this, and no code, is a collapsed answer
PROSE_WORDS = 8  # at least this many plain words outside code is prose
STEM = 5  # words sharing a prefix this long (and all but 3 letters) count as one
_COLLAPSIBLE = frozenset({"explain", "howto", "code"})

_QUOTE = re.compile(re.escape(BEGIN_QUOTE) + r".*?(?:" + re.escape(END_QUOTE) + r"|\n|\Z)", re.S)
_LABELS = re.compile(re.escape(ANSWER_TAG) + r"|##\s*Reason\s*:|" + re.escape(END_QUOTE), re.I)
_FENCED = re.compile(r"```.*?(?:```|\Z)", re.S)
_INLINE = re.compile(r"`[^`\n]*`")
_CODE_LINE = re.compile(r"^\s*(?:async\s+def|def|class|function|func)\s+\w+", re.M)
_SPAN = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)*\.[A-Za-z]\w*")
_TOKENS = re.compile(r"[a-z0-9]+|\w+")


class AskScore(BaseModel):
    """The marks one answer earns on one item (see the module docstring for the rules)."""

    score: float
    named: bool
    content: float | None = None
    prose: bool
    collapsed: bool
    invented: int
    parses: bool | None = None
    signature_ok: bool | None = None
    passed: bool | None = None


def strip_markup(answer: str) -> str:
    """The answer without quoted spans and answer/reason labels, whitespace collapsed."""
    return " ".join(_LABELS.sub(" ", _QUOTE.sub(" ", answer)).split())


def _shows_code(text: str) -> bool:
    return "```" in text or _CODE_LINE.search(text) is not None


def is_collapsed(answer: str) -> bool:
    """Whether an answer is a bare quote and/or a few tokens: under COLLAPSE_WORDS words
    once quotes and labels are gone, and no code block or definition."""
    text = _LABELS.sub(" ", _QUOTE.sub(" ", answer))
    words = [w for w in text.split() if any(ch.isalnum() for ch in w)]
    return len(words) < COLLAPSE_WORDS and not _shows_code(text)


def _is_prose(plain: str) -> bool:
    words = re.findall(r"[A-Za-z]{2,}", _INLINE.sub(" ", _FENCED.sub(" ", plain)))
    return len(words) >= PROSE_WORDS


def _names(text: str, item: AskItem) -> bool:
    """Whether text names the item's symbol (see the module docstring)."""
    if re.search(rf"(?<!\w){re.escape(item.qualname)}(?!\w)", text):
        return True
    name = re.escape(item.name)
    plain_word = item.name.islower() and "_" not in item.name.strip("_")
    if not plain_word:
        return re.search(rf"(?<!\w){name}(?!\w)", text) is not None
    if re.search(rf"(?<!\w){name}\s*\(|\.{name}(?!\w)", text):
        return True
    return any(item.name in re.findall(r"\w+", span) for span in _SPAN.findall(text))


def _names_file(text: str, item: AskItem) -> bool:
    """Whether text names the item's file: its path, a `/`-aligned suffix, or its module."""
    for m in _PATH.finditer(text):
        found = m.group(0).removeprefix("./")
        if item.path == found or item.path.endswith("/" + found):
            return True
    stem = item.path.rsplit(".", 1)[0] if "." in item.path.rsplit("/", 1)[-1] else item.path
    module = stem.removesuffix("/__init__").replace("/", ".")
    return (
        "." in module and re.search(rf"(?<![\w.]){re.escape(module)}(?!\w|\.\w)", text) is not None
    )


def _matches(word: str, tokens: set[str]) -> bool:
    if word in tokens:
        return True
    for token in tokens:
        common = len(_common_prefix(word, token))
        if common >= max(STEM, min(len(word), len(token)) - 3):
            return True
    return False


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _content_share(plain: str, item: AskItem) -> float | None:
    """Share of the item's content words the text carries (case-insensitive, stem-tolerant)."""
    if not item.content:
        return None
    tokens = set(_TOKENS.findall(plain.lower()))
    return sum(_matches(w.lower(), tokens) for w in item.content) / len(item.content)


def _call_args(text: str, name: str) -> list[list[str]]:
    """The argument lists of every call `name(...)` in text (top-level commas split them)."""
    calls: list[list[str]] = []
    for m in re.finditer(rf"(?<!\w){re.escape(name)}\s*\(", text):
        depth, parts, current = 1, [], ""
        for ch in text[m.end() :]:
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth == 0:
                break
            if ch == "," and depth == 1:
                parts.append(current)
                current = ""
            else:
                current += ch
        parts.append(current)
        calls.append([p.strip() for p in parts if p.strip()])
    return calls


def _args_fit(args: list[str], item: AskItem) -> bool:
    keywords = [m.group(1) for a in args if (m := re.match(r"(\w+)\s*=(?!=)", a))]
    if any(k not in item.params for k in keywords):
        return False
    if any(a.startswith("*") for a in args):
        return True
    return _required(item) <= len(args) <= len(item.params)


def _required(item: AskItem) -> int:
    """How many arguments the item's call example passes: its required parameters."""
    callee = item.call.split("(", 1)[0].rsplit(".", 1)[-1]
    calls = _call_args(item.call, callee) if item.call else []
    return len(calls[0]) if calls else 0


def _signature_ok(code: str, item: AskItem) -> bool | None:
    """Python: whether the code defines `name` with the item's parameter names."""
    if item.language != "python":
        return None
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == item.name:
            a = node.args
            names = [x.arg for x in [*a.posonlyargs, *a.args]]
            if names[:1] in (["self"], ["cls"]) and names[0] not in item.params:
                names = names[1:]
            names += [x.arg for x in [a.vararg, *a.kwonlyargs, a.kwarg] if x is not None]
            return names == item.params
    return False


def _parses(code: str, item: AskItem) -> bool | None:
    code = textwrap.dedent(code)
    whole = syntax_valid(code, item.language)
    if whole is None or not whole:
        unit = as_unit(code, item.signature, item.language) if code.strip() else ""
        return whole if whole is None else bool(syntax_valid(unit, item.language))
    return True


def _code_marks(answer: str, item: AskItem, passed: bool | None) -> tuple[float, dict[str, Any]]:
    code = extract_code(answer)
    parses, signature = _parses(code, item), _signature_ok(code, item)
    if signature is None:
        score = float(bool(parses))
    elif passed is None:
        score = 0.4 * bool(parses) + 0.6 * signature
    else:
        score = 0.2 * bool(parses) + 0.3 * signature + 0.5 * passed
    return score, {"parses": parses, "signature_ok": signature, "passed": passed}


def score_ask(
    item: AskItem, answer: str, prompt: str, names: RepoNames, passed: bool | None = None
) -> AskScore:
    """The marks of one answer to one item; `prompt` is what the model saw (its words are not
    invented) and `passed` whether the repo's tests passed with its code (code kind only)."""
    plain = strip_markup(answer)
    collapsed = item.kind in _COLLAPSIBLE and is_collapsed(answer)
    named = _names(plain, item)
    content = _content_share(plain, item) if item.kind in ("explain", "howto") else None
    call = bool(_call_args(plain, item.name))
    extra: dict[str, Any] = {}
    if item.kind == "explain":
        score = named if content is None else 0.4 * named + 0.6 * content
    elif item.kind == "howto":
        score = 0.6 * named + 0.4 * call
    elif item.kind == "where":
        named = named or _names_file(plain, item)
        score = float(named)
    elif item.kind == "usage":
        fit = any(_args_fit(args, item) for args in _call_args(plain, item.name))
        score = 0.5 * call + 0.5 * fit
    else:
        score, extra = _code_marks(answer, item, passed)
    return AskScore(
        score=0.0 if collapsed else round(float(score), 4),
        named=named,
        content=None if content is None else round(content, 4),
        prose=_is_prose(plain),
        collapsed=collapsed,
        invented=len(unknown_names(answer, prompt, names)),
        **extra,
    )


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def answers_summary(items: Sequence[AskItem], scores: Sequence[AskScore]) -> dict[str, Any]:
    """Mean score overall, per kind (with named and collapse shares) and on seen/unseen files;
    the collapse share over explain/howto/code items and the invented names per answer."""
    pairs = list(zip(items, scores, strict=True))
    kinds: dict[str, list[AskScore]] = defaultdict(list)
    for item, s in pairs:
        kinds[item.kind].append(s)
    by_kind = {
        kind: {
            "n": len(group),
            "score": _mean([s.score for s in group]),
            "named": _mean([float(s.named) for s in group]),
            "collapse": _mean([float(s.collapsed) for s in group])
            if kind in _COLLAPSIBLE
            else None,
        }
        for kind, group in sorted(kinds.items())
    }
    collapsible = [float(s.collapsed) for item, s in pairs if item.kind in _COLLAPSIBLE]
    return {
        "n": len(pairs),
        "score": _mean([s.score for s in scores]),
        "by_kind": by_kind,
        "collapse": _mean(collapsible),
        "invented_per_answer": _mean([float(s.invented) for s in scores]),
        "seen": _mean([s.score for item, s in pairs if item.seen]),
        "unseen": _mean([s.score for item, s in pairs if not item.seen]),
    }
