"""Metrics over scored items: answer perplexity and exact match, and the per-item records."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from guardian.core.schema import Sample


def normalise(text: str) -> str:
    """Whitespace-normalised, stripped text for exact-match comparison."""
    return " ".join(text.split())


def role_summary(
    name: str,
    dataset: str,
    nll: list[tuple[float, int]],
    answers: list[str],
    samples: list[Sample],
) -> dict[str, Any]:
    """One model's metrics: token-weighted answer NLL and perplexity, exact match on `answers`."""
    tokens = sum(n for _, n in nll)
    mean_nll = sum(s for s, _ in nll) / tokens if tokens else float("nan")
    hits = [normalise(a) == normalise(s.output) for a, s in zip(answers, samples, strict=False)]
    return {
        "model": name,
        "dataset": dataset,
        "n": len(nll),
        "answer_tokens": tokens,
        "mean_nll": mean_nll,
        "perplexity": math.exp(mean_nll) if tokens else float("nan"),
        "exact_match": sum(hits) / len(hits) if hits else None,
    }


def item_records(
    samples: list[Sample], order: list[int], scored: dict[str, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Per-item results for both roles (NLL, and answers with exact match where generated)."""
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
                item[f"{role}_em"] = normalise(answer) == normalise(sample.output)
        item["answer_tokens"] = scored["challenger"]["nll"][i][1]
        yield item
