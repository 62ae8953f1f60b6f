"""Metrics over scored items: answer perplexity, final-answer exact match and token F1.

Exact match and F1 compare final answers only: for a RAFT answer the text after its last
`<ANSWER>:` tag (the quoted reasoning before it is not the answer), else the whole text. Both
sides are normalised the SQuAD way, adapted to code: lower-cased, split into word tokens
(letters, digits and `_`; so quotes, backticks and punctuation drop out and
`inventory/money.py` is `inventory money py`), articles removed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from guardian.core.schema import ANSWER_TAG, Sample

_ARTICLES = frozenset({"a", "an", "the"})
# Metrics that do not depend on the tokenizer: they compare models on different bases.
TOKENIZER_FREE = frozenset(
    {"exact_match", "token_f1", "hallucination_rate", "codebleu", "syntax_valid_rate"}
    | {f"probe_{m}{p}" for m in ("open", "closed") for p in ("", "_seen", "_unseen")}
)
_WORD = re.compile(r"\w+")


def final_answer(text: str) -> str:
    """The final answer of a generation or reference: after its last answer tag, else all."""
    head, sep, tail = text.rpartition(ANSWER_TAG)
    return tail.strip() if sep else text.strip()


def answer_tokens(text: str) -> list[str]:
    """The normalised word tokens of a final answer (see the module docstring)."""
    return [t for t in _WORD.findall(final_answer(text).lower()) if t not in _ARTICLES]


def exact_match(answer: str, reference: str) -> bool:
    """Whether the final answers are the same after normalisation (two empty ones are not)."""
    got, want = answer_tokens(answer), answer_tokens(reference)
    return bool(want) and got == want


def token_f1(answer: str, reference: str) -> float:
    """Harmonic mean of token precision and recall between the final answers (bag of tokens)."""
    got, want = Counter(answer_tokens(answer)), Counter(answer_tokens(reference))
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def role_summary(
    name: str,
    dataset: str,
    nll: list[tuple[float, int]],
    answers: list[str],
    samples: list[Sample],
) -> dict[str, Any]:
    """One model's metrics: token-weighted answer NLL and perplexity; final-answer exact
    match and token F1 on `answers` (the first len(answers) samples)."""
    tokens = sum(n for _, n in nll)
    mean_nll = sum(s for s, _ in nll) / tokens if tokens else float("nan")
    pairs = list(zip(answers, samples, strict=False))
    hits = [exact_match(a, s.output) for a, s in pairs]
    f1 = [token_f1(a, s.output) for a, s in pairs]
    return {
        "model": name,
        "dataset": dataset,
        "n": len(nll),
        "answer_tokens": tokens,
        "mean_nll": mean_nll if tokens else None,
        "perplexity": math.exp(mean_nll) if tokens else None,
        "exact_match": sum(hits) / len(hits) if hits else None,
        "token_f1": sum(f1) / len(f1) if f1 else None,
    }


def item_records(
    samples: list[Sample], order: list[int], scored: dict[str, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Per-item results for both roles: NLL; where an answer was generated, the answer, its
    exact match, F1, hallucination (None or why) and whether it ran out of tokens."""
    for i, sample in enumerate(samples):
        item: dict[str, Any] = {"index": order[i]}
        for key in ("path", "question_type"):
            if key in sample.metadata:
                item[key] = sample.metadata[key]
        for role in ("challenger", "baseline"):
            total, count = scored[role]["nll"][i]
            item[f"{role}_nll"] = total / count if count else None
        if i < len(scored["challenger"]["answers"]):
            item["reference"] = sample.output
            for role in ("challenger", "baseline"):
                answer = scored[role]["answers"][i]
                item[f"{role}_answer"] = answer
                item[f"{role}_em"] = exact_match(answer, sample.output)
                item[f"{role}_f1"] = round(token_f1(answer, sample.output), 4)
                item[f"{role}_hallucination"] = scored[role]["hallucination"][i]
                item[f"{role}_cut"] = scored[role]["cut"][i]
        item["answer_tokens"] = scored["challenger"]["nll"][i][1]
        yield item
