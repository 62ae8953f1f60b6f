"""Validate step: schema-check a split dataset and drop bad, duplicate and leaking samples.

Splits are processed in the order test, val, train, so when two splits share a sample the
evaluation copy is kept and the training copy dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

import structlog
from pydantic import Field

from guardian.errors import DataError
from guardian.records import Sample, read_jsonl, write_json, write_jsonl
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

log = structlog.get_logger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
ORDER: tuple[str, ...] = ("test", "val", "train")
REASONS: tuple[str, ...] = ("empty", "input_too_long", "output_too_long", "duplicate", "leak")
MIN_LEAK_LINES = 2
_FENCE_RE = re.compile(r"^```[^\n`]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


class Params(StepParams):
    """Validation limits; lengths count characters of instruction+input and of output."""

    min_output_chars: int = Field(default=1, ge=1)
    max_input_chars: int = Field(default=6000, ge=1)
    max_output_chars: int = Field(default=4000, ge=1)
    dedupe: bool = True


def dedupe_key(sample: Sample) -> str:
    """Hash of instruction, input and output with all whitespace runs collapsed."""
    parts = (sample.instruction or "", sample.input, sample.output)
    text = "\x00".join(" ".join(p.split()) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()


def code_blocks(text: str) -> list[str]:
    """Contents of the fenced code blocks in a text, without the fences."""
    return [m.group(1).strip("\n") for m in _FENCE_RE.finditer(text)]


class LeakIndex:
    """Finds train code that appears verbatim in a test sample's output.

    Blocks shorter than MIN_LEAK_LINES non-blank lines are ignored: a shared one-line
    signature is not an implementation leak. An interior line of a block must be a whole
    line of any text containing the block, so it narrows candidates before the exact check.
    """

    def __init__(self, test_outputs: list[str]) -> None:
        self._outputs = test_outputs
        self._by_line: dict[str, set[int]] = defaultdict(set)
        for i, text in enumerate(test_outputs):
            for line in text.split("\n"):
                if line.strip():
                    self._by_line[line].add(i)

    def _candidates(self, block: str) -> list[int]:
        interior = block.split("\n")[1:-1]
        anchor = max(interior, key=len, default="")
        if not anchor.strip():
            return list(range(len(self._outputs)))
        return sorted(self._by_line.get(anchor, ()))

    def leaks(self, output: str) -> bool:
        """True when any multi-line code block of `output` occurs verbatim in a test output."""
        for block in code_blocks(output):
            if sum(1 for ln in block.splitlines() if ln.strip()) < MIN_LEAK_LINES:
                continue
            if any(block in self._outputs[i] for i in self._candidates(block)):
                return True
        return False


def drop_reason(sample: Sample, params: Params) -> str | None:
    """Why a sample fails the length checks, or None when it passes."""
    if not sample.input.strip() or len(sample.output.strip()) < params.min_output_chars:
        return "empty"
    if len(sample.instruction or "") + len(sample.input) > params.max_input_chars:
        return "input_too_long"
    if len(sample.output) > params.max_output_chars:
        return "output_too_long"
    return None


def clean(
    splits: dict[str, list[Sample]], params: Params
) -> tuple[dict[str, list[Sample]], dict[str, dict[str, int]]]:
    """Apply every check; returns the kept samples and drop counts per split and reason."""
    kept: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    dropped: dict[str, dict[str, int]] = {split: dict.fromkeys(REASONS, 0) for split in SPLITS}
    seen: set[str] = set()
    leak_index: LeakIndex | None = None
    for split in ORDER:
        if split == "train":
            leak_index = LeakIndex([s.output for s in kept["test"]])
        for sample in splits[split]:
            reason = drop_reason(sample, params)
            key = dedupe_key(sample)
            if reason is None and params.dedupe and key in seen:
                reason = "duplicate"
            if reason is None and leak_index is not None and leak_index.leaks(sample.output):
                reason = "leak"
            if reason is not None:
                dropped[split][reason] += 1
                continue
            seen.add(key)
            kept[split].append(sample)
    return kept, dropped


def _card(
    read: dict[str, int], kept: dict[str, list[Sample]], dropped: dict[str, dict[str, int]]
) -> dict[str, Any]:
    types: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        counts: dict[str, int] = defaultdict(int)
        for s in kept[split]:
            counts[str(s.metadata.get("question_type", "unknown"))] += 1
        types[split] = dict(sorted(counts.items()))
    return {
        "read": read,
        "kept": {split: len(kept[split]) for split in SPLITS},
        "dropped": {r: sum(dropped[s][r] for s in SPLITS) for r in REASONS},
        "dropped_by_split": dropped,
        "question_types": types,
    }


def run(ctx: StepContext, params: Params) -> StepResult:
    """Read train/val/test from the dataset artifact, clean them and write them back out."""
    src = ctx.input("dataset")
    splits = {split: list(read_jsonl(src / f"{split}.jsonl", Sample)) for split in SPLITS}
    kept, dropped = clean(splits, params)
    card = _card({s: len(splits[s]) for s in SPLITS}, kept, dropped)
    if not kept["train"]:
        summary = ", ".join(f"{r}={n}" for r, n in card["dropped"].items() if n) or "none"
        raise DataError(f"no training samples left after validation (dropped: {summary})")
    for split in SPLITS:
        write_jsonl(ctx.out_dir / f"{split}.jsonl", kept[split])
    write_json(ctx.out_dir / "card.json", card)
    log.info("validate.done", **card["kept"], dropped=sum(card["dropped"].values()))
    return StepResult(
        outputs=[f"{split}.jsonl" for split in SPLITS] + ["card.json"],
        metrics={**card["kept"], "dropped": sum(card["dropped"].values())},
    )


SPEC = StepSpec(name="validate", fn=run, params=Params, needs=("dataset",), provides="dataset")
