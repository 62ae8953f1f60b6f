"""Dataset files and their card: a streaming split writer and the statistics a card reports.

The card says what is in a dataset at a glance: counts per split, question type and drop
reason, the RAFT oracle fraction, quote grounding, an approximate token-length histogram and a
few random samples. Everything is accumulated in one pass with bounded memory.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from guardian.core.fsutil import atomic_write
from guardian.core.jsonl import record_line
from guardian.core.schema import Sample
from guardian.ml.prompting import user_text

__all__ = ["SPLITS", "TOKEN_EDGES", "CardBuilder", "SplitWriter", "approx_tokens", "summary_lines"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
TOKEN_EDGES: tuple[int, ...] = (0, 32, 64, 128, 256, 384, 512, 1024, 2048)
_TOKEN = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """A tokenizer-free token count (words and punctuation marks); BPE counts run ~1-1.5x it."""
    return len(_TOKEN.findall(text))


class SplitWriter:
    """Writes train/val/test JSONL files line by line; each appears only when closed cleanly.

    Lines are serialised by `core.jsonl.record_line`, as `write_jsonl` does, so output is
    byte-identical.
    """

    def __init__(self, out_dir: Path, splits: tuple[str, ...] = SPLITS) -> None:
        self.paths = {s: out_dir / f"{s}.jsonl" for s in splits}
        self.counts: Counter[str] = Counter()
        self._stack = ExitStack()
        self._files = {s: self._stack.enter_context(atomic_write(p)) for s, p in self.paths.items()}

    def write(self, split: str, sample: Sample) -> None:
        """Append one sample to a split's file."""
        self._files[split].write(record_line(sample))
        self.counts[split] += 1

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)


def _histogram(lengths: Counter[int]) -> dict[str, Any]:
    counts = [0] * len(TOKEN_EDGES)
    for length, n in lengths.items():
        slot = max(i for i, edge in enumerate(TOKEN_EDGES) if length >= edge)
        counts[slot] += n
    total = sum(lengths.values())
    ordered = sorted(lengths.items())

    def quantile(q: float) -> int:
        seen = 0
        for length, n in ordered:
            seen += n
            if seen >= q * total:
                return length
        return 0

    return {
        "edges": list(TOKEN_EDGES),
        "counts": counts,
        "mean": round(sum(k * n for k, n in ordered) / total, 1) if total else 0.0,
        "p50": quantile(0.5),
        "p95": quantile(0.95),
        "max": ordered[-1][0] if ordered else 0,
    }


class CardBuilder:
    """Accumulates a validation card over a stream of kept and dropped samples."""

    def __init__(self, reasons: tuple[str, ...], seed: int = 0, n_examples: int = 5) -> None:
        self.reasons = reasons
        self.read: Counter[str] = Counter()
        self.kept: Counter[str] = Counter()
        self.dropped: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        self.types: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        self.oracle: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
        self.quotes: Counter[str] = Counter()
        self.prompt_tokens: Counter[int] = Counter()
        self.total_tokens: Counter[int] = Counter()
        self._rng = random.Random(seed)
        self._n_examples = n_examples
        self._examples: list[dict[str, Any]] = []
        self._seen = 0
        self.schema_errors: list[str] = []
        self.schema_error_count = 0

    def count_quotes(self, checked: int, ungrounded: int) -> None:
        """Record how many quotes a sample had and how many were not in its oracle."""
        self.quotes["checked"] += checked
        self.quotes["ungrounded"] += ungrounded

    def schema_error(self, message: str) -> None:
        """Record one malformed line (the first 50 messages are kept)."""
        self.schema_error_count += 1
        if len(self.schema_errors) < 50:
            self.schema_errors.append(message)

    def drop(self, split: str, reason: str) -> None:
        """Record a dropped sample."""
        self.read[split] += 1
        self.dropped[split][reason] += 1

    def keep(self, split: str, sample: Sample) -> None:
        """Record a kept sample: its type, oracle flag, token lengths, maybe as an example."""
        self.read[split] += 1
        self.kept[split] += 1
        self.types[split][str(sample.metadata.get("question_type", "unknown"))] += 1
        if "has_oracle" in sample.metadata:
            self.oracle[split]["with" if sample.metadata["has_oracle"] else "without"] += 1
        prompt = approx_tokens(user_text(sample))
        self.prompt_tokens[prompt] += 1
        self.total_tokens[prompt + approx_tokens(sample.output)] += 1
        self._seen += 1
        if len(self._examples) < self._n_examples:
            self._examples.append({"split": split, **sample.model_dump(mode="json")})
        else:
            slot = self._rng.randrange(self._seen)
            if slot < self._n_examples:
                self._examples[slot] = {"split": split, **sample.model_dump(mode="json")}

    def build(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The card as a JSON-ready dict."""
        by_type: dict[str, int] = defaultdict(int)
        for split in SPLITS:
            for qt, n in self.types[split].items():
                by_type[qt] += n
        card: dict[str, Any] = {
            "read": {s: self.read[s] for s in SPLITS},
            "kept": {s: self.kept[s] for s in SPLITS},
            "dropped": {r: sum(self.dropped[s][r] for s in SPLITS) for r in self.reasons},
            "dropped_by_split": {s: {r: self.dropped[s][r] for r in self.reasons} for s in SPLITS},
            "question_types": {s: dict(sorted(self.types[s].items())) for s in SPLITS},
            "question_type_totals": dict(sorted(by_type.items())),
            "oracle": oracle_tally(self.oracle),
            "quotes": {"checked": self.quotes["checked"], "ungrounded": self.quotes["ungrounded"]},
            "tokens": {
                "method": "approx: words and punctuation marks",
                "prompt": _histogram(self.prompt_tokens),
                "total": _histogram(self.total_tokens),
            },
            "schema_errors": {"count": self.schema_error_count, "first": self.schema_errors},
            "examples": self._examples,
        }
        card.update(extra or {})
        return card


def oracle_tally(counts: dict[str, Counter[str]]) -> dict[str, dict[str, Any]]:
    """RAFT samples with and without their oracle document per split and over "all" (counts
    keyed "with"/"without" in), and the fraction with it: the card and synthesis both report it."""
    rows: dict[str, dict[str, Any]] = {}
    totals: Counter[str] = Counter()
    for split in SPLITS:
        totals.update(counts[split])
        rows[split] = _oracle_row(counts[split])
    rows["all"] = _oracle_row(totals)
    return rows


def _oracle_row(c: Counter[str]) -> dict[str, Any]:
    n = c["with"] + c["without"]
    return {
        "with_oracle": c["with"],
        "without_oracle": c["without"],
        "fraction": round(c["with"] / n, 4) if n else None,
        "samples": n,
    }


def summary_lines(card: dict[str, Any]) -> list[str]:
    """A validation card as a few human lines (for `guardian validate-data`)."""
    kept, read = card["kept"], card["read"]
    lines = ["kept " + ", ".join(f"{s} {kept[s]}/{read[s]}" for s in SPLITS)]
    dropped = {r: n for r, n in card["dropped"].items() if n}
    lines.append("dropped " + (", ".join(f"{r} {n}" for r, n in dropped.items()) or "nothing"))
    types = card["question_type_totals"]
    lines.append(
        f"question types ({len(types)}): " + ", ".join(f"{t} {n}" for t, n in types.items())
    )
    oracle = card["oracle"]["all"]
    if oracle["samples"]:
        lines.append(f"oracle fraction {oracle['fraction']} over {oracle['samples']} RAFT samples")
    quotes = card["quotes"]
    lines.append(f"quotes checked {quotes['checked']}, ungrounded {quotes['ungrounded']}")
    total = card["tokens"]["total"]
    lines.append(
        f"approx tokens per sample: mean {total['mean']}, p50 {total['p50']}, "
        f"p95 {total['p95']}, max {total['max']}"
    )
    errors = card["schema_errors"]
    if errors["count"]:
        lines.append(f"schema errors {errors['count']}:")
        lines.extend(f"  {message}" for message in errors["first"][:10])
    return lines
