"""Scoring the knowledge probe: does an answer state the right fact before any wrong one?

An answer is right when (1) it names at least `need` of the item's expected facts, (2) the
first fact of the item's sort it names (expected or rival) is an expected one, and (3) it
names no more rival facts than expected ones, so an answer listing every file of the repo
scores nothing. A fact is named when it, or one of its aliases, appears as a whole token:
not inside a longer identifier, path or dotted name (`money.py` does not match inside
`inventory/money.py`, `inventory` does not match inside `inventory.money`), nor inside a
longer mention of another fact (`int` inside `list[int]` is not a rival). For a RAFT
answer only the text after its last `<ANSWER>:` tag counts. Matching is case-sensitive:
code names are.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from guardian.core.schema import ProbeItem
from guardian.evaluation.metrics import final_answer

__all__ = ["first_mentions", "probe_summary", "score_answer"]

_BEFORE = r"(?<![\w/.])"
_AFTER = r"(?![\w/]|\.\w)"


def _mentions(
    text: str, facts: Sequence[str], aliases: Mapping[str, str]
) -> list[tuple[str, int, int]]:
    """Every whole-token mention (fact, start, end) of the facts or their aliases, except
    those inside a longer mention of another fact (`int` inside `list[int]`)."""
    spellings: dict[str, list[str]] = defaultdict(list)
    for fact in facts:
        spellings[fact].append(fact)
    for alias, fact in aliases.items():
        if fact in spellings:
            spellings[fact].append(alias)
    found = [
        (fact, m.start(), m.end())
        for fact, forms in spellings.items()
        for form in forms
        for m in re.finditer(_BEFORE + re.escape(form) + _AFTER, text)
    ]
    return [
        (fact, a, b)
        for fact, a, b in found
        if not any(other != fact and c <= a and b <= d and d - c > b - a for other, c, d in found)
    ]


def first_mentions(text: str, facts: Sequence[str], aliases: Mapping[str, str]) -> dict[str, int]:
    """Fact -> position of its first mention (by itself or an alias) in `text`."""
    first: dict[str, int] = {}
    for fact, start, _ in _mentions(text, facts, aliases):
        first[fact] = min(start, first.get(fact, start))
    return first


def score_answer(item: ProbeItem, answer: str) -> bool:
    """Whether an answer gives the item's fact: see the module docstring for the rule."""
    text = final_answer(answer)
    expected = set(item.expected)
    rivals = [r for r in item.rivals if r not in expected]
    found = first_mentions(text, [*item.expected, *rivals], item.aliases)
    hits = [f for f in found if f in expected]
    wrong = [f for f in found if f not in expected]
    if len(hits) < item.need:
        return False
    first = min(found, key=lambda f: (found[f], f not in expected))
    return first in expected and len(wrong) <= len(hits)


def _rate(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def probe_summary(
    items: Sequence[ProbeItem],
    correct: Mapping[str, Sequence[bool]],
    recall: Sequence[bool] | None = None,
    cut: Mapping[str, Sequence[bool]] | None = None,
) -> dict[str, Any]:
    """Accuracy per mode (`closed`, `open`): overall, per kind, and for seen/unseen files.

    `correct[mode][i]` is whether item i was answered right in that mode; `recall[i]`
    whether open-book retrieval put a document stating its answer in the prompt;
    `cut[mode][i]` whether its answer ran out of new tokens (counted per mode).
    """
    out: dict[str, Any] = {"n": len(items)}
    for mode, marks in correct.items():
        row: dict[str, Any] = {"accuracy": _rate(marks)}
        kinds: dict[str, list[bool]] = defaultdict(list)
        for item, ok in zip(items, marks, strict=True):
            kinds[item.kind].append(ok)
        row["by_kind"] = {k: _rate(v) for k, v in sorted(kinds.items())}
        for name, want in (("seen", True), ("unseen", False)):
            marks_of = [ok for item, ok in zip(items, marks, strict=True) if item.seen is want]
            row[name] = _rate(marks_of)
            row[f"n_{name}"] = len(marks_of)
        if cut is not None:
            row["cut"] = sum(cut[mode])
        out[mode] = row
    if recall is not None:
        out["retrieval_recall"] = _rate(recall)
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for item, hit in zip(items, recall, strict=True):
            by_kind[item.kind].append(hit)
        out["retrieval_recall_by_kind"] = {k: _rate(v) for k, v in sorted(by_kind.items())}
    return out
