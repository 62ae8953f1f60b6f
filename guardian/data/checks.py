"""Dataset checks: schema, lengths, format, grounding, context, duplicates and test leaks.

Drops empty, too-short and too-long samples; RAFT samples without an answer tag or a quote;
answers quoting anything that is not in their oracle; samples whose context contradicts
`has_oracle`; exact and near duplicates (MinHash); and training samples that leak test code
(a shared multi-line code block, or a test chunk in their context). Splits are processed in
the order test, val, train, so when two splits share a sample the evaluation copy is kept.
Everything streams: memory holds hashes and the test split's code, not the dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from guardian.core.faults import fault_point
from guardian.core.jsonl import first_error, numbered_lines, write_json
from guardian.core.schema import Sample
from guardian.data.card import SPLITS, CardBuilder, SplitWriter
from guardian.data.raft import final_answer, normalise_ws, question_of, quotes_in, ungrounded_quotes
from guardian.errors import DataError

ORDER: tuple[str, ...] = ("test", "val", "train")
REASONS: tuple[str, ...] = (
    "schema",
    "empty",
    "too_short",
    "input_too_long",
    "output_too_long",
    "format",
    "ungrounded",
    "bad_context",
    "duplicate",
    "near_duplicate",
    "leak",
)
MIN_LEAK_LINES = 2
_FENCE_RE = re.compile(r"^```[^\n`]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


class CheckOptions(Protocol):
    """The validation limits and switches the checks read (the validate step's params)."""

    min_output_chars: int
    max_input_chars: int
    max_output_chars: int
    dedupe: bool
    near_duplicates: bool
    near_threshold: float
    grounding: bool
    leaks: bool
    strict_schema: bool
    card_examples: int
    seed: int

    def model_dump(self, *, mode: str = "python") -> dict[str, Any]:
        """The options as a plain dict, for the card."""


def dedupe_key(sample: Sample) -> bytes:
    """Digest of instruction, question (RAFT context left out) and output, whitespace collapsed."""
    parts = (sample.instruction or "", question_of(sample.input), sample.output)
    return hashlib.sha256("\x00".join(normalise_ws(p) for p in parts).encode()).digest()[:16]


def code_blocks(text: str) -> list[str]:
    """Contents of the fenced code blocks in a text, without the fences."""
    return [m.group(1).strip("\n") for m in _FENCE_RE.finditer(text)]


def _code_lines(block: str) -> list[str]:
    return [ln for ln in block.split("\n") if ln.strip()]


class LeakIndex:
    """Test-split code blocks, to find training text that shares one with them.

    A training block leaks when it lies inside a test block or contains one; blocks with
    fewer than MIN_LEAK_LINES non-blank lines are ignored (a shared signature is no leak).
    Lookups go through whole lines: every test line maps to its blocks, and each test
    block is also keyed by its longest line, so one dict lookup per line finds candidates.
    """

    def __init__(self, texts: list[str] | None = None) -> None:
        self._blocks: list[str] = []
        self._by_line: dict[str, list[int]] = defaultdict(list)
        self._by_key: dict[str, list[int]] = defaultdict(list)
        for text in texts or []:
            self.add(text)

    def add(self, text: str) -> None:
        """Index every multi-line code block of a test text."""
        for block in code_blocks(text):
            lines = _code_lines(block)
            if len(lines) < MIN_LEAK_LINES:
                continue
            index = len(self._blocks)
            self._blocks.append(block)
            for line in dict.fromkeys(lines):
                self._by_line[line].append(index)
            self._by_key[max(lines, key=len)].append(index)

    def leaks(self, text: str) -> bool:
        """True when a multi-line code block of `text` overlaps a test block by containment."""
        for block in code_blocks(text):
            lines = _code_lines(block)
            if len(lines) < MIN_LEAK_LINES:
                continue
            inside = self._by_line.get(max(lines, key=len), [])
            if any(block in self._blocks[i] for i in inside):
                return True
            for line in dict.fromkeys(lines):
                if any(self._blocks[i] in block for i in self._by_key.get(line, ())):
                    return True
        return False


def length_reason(sample: Sample, params: CheckOptions) -> str | None:
    """Why a sample fails the length checks, or None when it passes."""
    if not sample.input.strip() or not sample.output.strip():
        return "empty"
    if len(sample.output.strip()) < params.min_output_chars:
        return "too_short"
    if len(sample.instruction or "") + len(sample.input) > params.max_input_chars:
        return "input_too_long"
    if len(sample.output) > params.max_output_chars:
        return "output_too_long"
    return None


def _oracles(sample: Sample) -> list[str] | None:
    value = sample.metadata.get("oracle")
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


class Checker:
    """Applies every check to a stream of samples, split by split in ORDER."""

    def __init__(self, params: CheckOptions, card: CardBuilder) -> None:
        self.params = params
        self.card = card
        self.seen: set[bytes] = set()
        from guardian.data.retrieval import NearDupIndex  # numpy: keep the step registry light

        self.near = NearDupIndex(params.near_threshold) if params.near_duplicates else None
        self.test_code = LeakIndex()
        self.test_ids: set[str] = set()

    def reason(self, sample: Sample, split: str) -> str | None:
        """Why `sample` is dropped, or None to keep it (updating dedupe and leak state)."""
        meta = sample.metadata
        reason = length_reason(sample, self.params) or self._format(sample)
        if reason is None and self.params.grounding:
            reason = self._grounding(sample)
        if reason is None:
            reason = self._context(sample)
        key = dedupe_key(sample)
        if reason is None and self.params.dedupe and key in self.seen:
            reason = "duplicate"
        if reason is None and split == "train" and self.params.leaks and self._leaks(sample):
            reason = "leak"
        if reason is None and self.near is not None:
            text = f"{question_of(sample.input)}\n{sample.output}"
            if not self.near.add_if_new(text):
                reason = "near_duplicate"
        if split == "test":
            self.test_ids.update(_ids(meta, "oracle_ids"))
            if meta.get("chunk_id") is not None:
                self.test_ids.add(str(meta["chunk_id"]))
        if reason is None:
            self.seen.add(key)
            if split == "test":
                self.test_code.add(sample.output)
                self.test_code.add(question_of(sample.input))
        return reason

    def _format(self, sample: Sample) -> str | None:
        spans = quotes_in(sample.output)
        if spans is None:
            return "format"
        meta = sample.metadata
        if "has_oracle" in meta:
            if not isinstance(meta["has_oracle"], bool) or _oracles(sample) is None:
                return "format"
            if not spans or final_answer(sample.output) is None:
                return "format"
        return None

    def _grounding(self, sample: Sample) -> str | None:
        spans = quotes_in(sample.output) or []
        if not spans:
            return None
        oracles = _oracles(sample)
        bad = ungrounded_quotes(sample.output, oracles) if oracles else spans
        bad = bad if bad is not None else spans
        self.card.count_quotes(len(spans), len(bad))
        return "ungrounded" if bad else None

    def _context(self, sample: Sample) -> str | None:
        """A RAFT context must hold its oracle exactly when `has_oracle` says so."""
        has, oracles = sample.metadata.get("has_oracle"), _oracles(sample)
        if isinstance(has, bool) and oracles:
            present = [o in sample.input for o in oracles]
            if (has and not all(present)) or (not has and any(present)):
                return "bad_context"
        return None

    def _leaks(self, sample: Sample) -> bool:
        meta = sample.metadata
        if self.test_ids.intersection(_ids(meta, "oracle_ids") + _ids(meta, "distractor_ids")):
            return True
        if meta.get("chunk_id") is not None and str(meta["chunk_id"]) in self.test_ids:
            return True
        return self.test_code.leaks(sample.output) or self.test_code.leaks(
            question_of(sample.input)
        )


def _ids(meta: dict[str, Any], key: str) -> list[str]:
    value = meta.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def read_samples(
    path: Path, on_error: CardBuilder | None, strict: bool
) -> Iterator[tuple[str, Sample | None]]:
    """(where, sample) per line; a malformed line yields None and is reported (or raised)."""
    for lineno, line in numbered_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(line)
            sample = Sample.model_validate(obj)
        except json.JSONDecodeError as exc:
            message = f"{where}: invalid JSON ({exc.msg})"
        except ValidationError as exc:
            message = f"{where}: {first_error(exc)}"
        else:
            yield where, sample
            continue
        if strict:
            raise DataError(message)
        if on_error is not None:
            on_error.schema_error(message)
        yield where, None


def split_of(sample: Sample) -> str:
    """The split a sample's metadata names (train when it names none or an unknown one)."""
    split = sample.metadata.get("split")
    return split if split in SPLITS else "train"


def _split_sources(src: Path, need_all: bool) -> dict[str, list[tuple[Path, str | None]]]:
    """Which file feeds each split: a dataset dir's split files, or one file filtered by split.

    `need_all` makes a missing split file of a dataset dir an error (pipeline artifacts have
    all three); otherwise it counts as empty.
    """
    if src.is_dir():
        files = {s: src / f"{s}.jsonl" for s in SPLITS}
        if not any(f.is_file() for f in files.values()):
            raise DataError(f"{src}: no train.jsonl, val.jsonl or test.jsonl")
        missing = [f for f in files.values() if not f.is_file()]
        if need_all and missing:
            raise DataError(f"{missing[0]}: file not found")
        return {s: [(f, None)] if f.is_file() else [] for s, f in files.items()}
    if not src.is_file():
        raise DataError(f"{src}: file not found")
    return {s: [(src, s)] for s in SPLITS}


def _synthesis_info(src: Path) -> dict[str, Any]:
    card = src / "card.json" if src.is_dir() else src.with_suffix(".card.json")
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    params = data.get("params", {}) if isinstance(data, dict) else {}
    keys = (
        *("raft", "oracle_fraction", "distractors", "seed", "max_context_chars"),
        *("max_summary_chars", "max_members", "instruction"),
    )
    return {k: params[k] for k in keys if k in params}


def validate_dataset(
    src: Path, out_dir: Path | None, params: CheckOptions, *, require_train: bool = False
) -> dict[str, Any]:
    """Check every sample of a dataset dir or JSONL file; write kept splits and card.json.

    With `out_dir` None nothing is written (a dry check). `require_train` makes an empty
    training split a DataError, raised before any output file appears.
    """
    card = CardBuilder(REASONS, params.seed, params.card_examples)
    checker = Checker(params, card)
    sources = _split_sources(src, need_all=params.strict_schema)
    with contextlib.ExitStack() as stack:
        writer = stack.enter_context(SplitWriter(out_dir)) if out_dir is not None else None
        for split in ORDER:
            for path, only in sources[split]:
                errors = card if only in (None, ORDER[0]) else None
                for _where, sample in read_samples(path, errors, params.strict_schema):
                    if sample is None:
                        if errors is not None:
                            card.drop(split if only is None else "train", "schema")
                        continue
                    if only is not None and split_of(sample) != only:
                        continue
                    reason = checker.reason(sample, split)
                    if reason is not None:
                        card.drop(split, reason)
                        continue
                    card.keep(split, sample)
                    if writer is not None:
                        writer.write(split, sample)
            fault_point("during", "validate")
        if require_train and not card.kept["train"]:
            dropped = {r: sum(card.dropped[s][r] for s in SPLITS) for r in REASONS}
            summary = ", ".join(f"{r}={n}" for r, n in dropped.items() if n) or "none"
            raise DataError(f"no training samples left after validation (dropped: {summary})")
    result = card.build(
        {"synthesis": _synthesis_info(src), "params": params.model_dump(mode="json")}
    )
    if out_dir is not None:
        write_json(out_dir / "card.json", result)
    return result
