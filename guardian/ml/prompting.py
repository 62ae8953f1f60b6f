"""The one place a Sample becomes token ids, for training, evaluation and generation alike.

The user turn is `instruction + "\\n\\n" + input` (just `input` without an instruction); the
assistant turn is `output` ending in the end-of-turn token. The tokenizer's chat template is
used when it has one, else a plain `### Question:` / `### Answer:` format. Prompt and answer
are tokenized separately, exactly as at generation time (`prompt_ids`), so training sees the
same prompt tokens the model later generates from.

Truncation to `max_len` (after steps/encoding.py has dropped what RAFT distractors it can):
the answer is kept whole unless it alone needs more than three quarters of `max_len` (then
it is cut from the right, `answer_cut`); the prompt is cut from the middle, keeping its
first and last halves, so the system/instruction start and the final question plus the
assistant header survive.

Training batches (`BatchPlan`) are length-grouped: each epoch is shuffled, cut into buckets of
~50 batches, each bucket sorted by length and cut into batches, and the batch order shuffled;
so padding is near zero while batches stay random, and batch i is a pure function of the seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from guardian.core.schema import Sample

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
MIN_MAX_LEN = 8
BUCKET_BATCHES = 50
_PLAIN_PROMPT = "### Question:\n{user}\n\n### Answer:\n"


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one sample; `labels` is -100 on prompt tokens, ids on answer tokens.

    `group` is the file the sample is about (its `metadata.path`): batch plans spread
    every file over each epoch, so a run stopped by its time budget still saw them all.
    """

    input_ids: list[int]
    labels: list[int]
    prompt_len: int
    full_len: int
    truncated: bool
    group: str = ""
    answer_cut: bool = False

    @property
    def answer_tokens(self) -> int:
        """How many tokens carry a loss (answer tokens kept after truncation)."""
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def user_text(sample: Sample) -> str:
    """The user turn: instruction and input separated by a blank line, or the input alone."""
    if sample.instruction and sample.instruction.strip():
        return f"{sample.instruction}\n\n{sample.input}"
    return sample.input


def _has_chat_template(tok: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tok, "chat_template", None))


def _encode(tok: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"])


def _end_ids(tok: PreTrainedTokenizerBase) -> list[int]:
    return [tok.eos_token_id] if tok.eos_token_id is not None else []


def prompt_ids(tok: PreTrainedTokenizerBase, sample: Sample) -> list[int]:
    """Token ids of the prompt up to and including the assistant header (for generation)."""
    user = user_text(sample)
    if _has_chat_template(tok):
        text = tok.apply_chat_template(
            [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
        )
        return _encode(tok, str(text))
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    return bos + _encode(tok, _PLAIN_PROMPT.format(user=user))


def answer_ids(tok: PreTrainedTokenizerBase, sample: Sample) -> list[int]:
    """Token ids of the assistant turn, ending with the end-of-turn (eos) token."""
    if _has_chat_template(tok):
        user = [{"role": "user", "content": user_text(sample)}]
        prompt = str(tok.apply_chat_template(user, tokenize=False, add_generation_prompt=True))
        full = str(
            tok.apply_chat_template(
                [*user, {"role": "assistant", "content": sample.output}], tokenize=False
            )
        )
        if full.startswith(prompt):
            ids = _encode(tok, full[len(prompt) :])
            eos = tok.eos_token_id
            if eos is not None and eos in ids:
                return ids[: len(ids) - ids[::-1].index(eos)]
            return ids + _end_ids(tok)
    return _encode(tok, sample.output) + _end_ids(tok)


def encode_example(tok: PreTrainedTokenizerBase, sample: Sample, max_len: int) -> EncodedExample:
    """Encode a sample for loss computation: prompt masked with -100, answer kept, <= max_len."""
    if max_len < MIN_MAX_LEN:
        raise ValueError(f"max_len must be at least {MIN_MAX_LEN}, got {max_len}")
    prompt = prompt_ids(tok, sample)
    answer = answer_ids(tok, sample)
    full_len = len(prompt) + len(answer)
    truncated = full_len > max_len
    answer_len = len(answer)
    if truncated:
        keep_prompt = min(len(prompt), max(max_len // 4, max_len - len(answer)))
        answer = answer[: max_len - keep_prompt]
        if len(prompt) > keep_prompt:
            head = keep_prompt // 2
            prompt = prompt[:head] + prompt[len(prompt) - (keep_prompt - head) :]
    return EncodedExample(
        input_ids=prompt + answer,
        labels=[IGNORE_INDEX] * len(prompt) + answer,
        prompt_len=len(prompt),
        full_len=full_len,
        truncated=truncated,
        group=str(sample.metadata.get("path") or ""),
        answer_cut=len(answer) < answer_len,
    )


def collate(batch: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch into input_ids / attention_mask / labels tensors (labels -100 on pads)."""
    import torch

    width = max(len(ex.input_ids) for ex in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ex in enumerate(batch):
        n = len(ex.input_ids)
        input_ids[row, :n] = torch.tensor(ex.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(ex.labels, dtype=torch.long)
        attention[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def spread_order(groups: Sequence[str], rng: random.Random) -> list[int]:
    """A random order of indices in which every group comes early and in proportion.

    One index of each group first (in random order), then the rest interleaved so each
    group's share of any prefix matches its share of the whole: a prefix of the epoch is a
    stratified sample of the files, not a lottery.
    """
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    firsts: list[int] = []
    keyed: list[tuple[float, int]] = []
    for idx in members.values():
        rng.shuffle(idx)
        firsts.append(idx[0])
        keyed += [((r + rng.random()) / len(idx), i) for r, i in enumerate(idx) if r]
    rng.shuffle(firsts)
    return firsts + [i for _key, i in sorted(keyed)]


def epoch_batches(
    lengths: Sequence[int],
    batch_size: int,
    seed: int,
    epoch: int,
    grouped: bool = True,
    groups: Sequence[str] | None = None,
) -> list[list[int]]:
    """One epoch's batches of indices; grouped: similar lengths share a batch, order random.

    A pure function of its arguments: shuffle, sort buckets of `BUCKET_BATCHES` batches by
    length, cut into batches, shuffle the batches. Ungrouped: the shuffle cut into batches.
    With `groups` (the file of each example) the shuffle is `spread_order`, the first bucket
    holds just one example of each file, and batches are shuffled within their bucket only:
    the epoch's first few batches cover every file, and any prefix stays stratified.
    """
    rng = random.Random(f"guardian-batches:{seed}:{epoch}")
    span = batch_size * BUCKET_BATCHES if grouped else batch_size
    if groups is None:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        starts = list(range(0, len(order), span))
    else:
        order = spread_order(groups, rng)
        first = math.ceil(len(set(groups)) / batch_size) * batch_size
        starts = [0, *range(first, len(order), span)]
    batches: list[list[int]] = []
    for start, end in zip(starts, [*starts[1:], len(order)], strict=True):
        bucket = order[start:end]
        if grouped:
            bucket.sort(key=lambda i: lengths[i])
        cut = [bucket[k : k + batch_size] for k in range(0, len(bucket), batch_size)]
        if grouped and groups is not None:
            rng.shuffle(cut)
        batches += cut
    if grouped and groups is None:
        rng.shuffle(batches)
    return batches


@dataclass(frozen=True)
class BatchStats:
    """Totals over a run of micro-batches: examples, real tokens and padded batch tokens."""

    examples: int
    tokens: int
    batch_tokens: int

    @property
    def pad_fraction(self) -> float:
        """Pad tokens / all tokens of the padded batches (0.0 for no batches)."""
        return 1.0 - self.tokens / self.batch_tokens if self.batch_tokens else 0.0


class BatchPlan:
    """Micro-batch index -> examples over endless epochs; batch i depends on (seed, i) alone."""

    def __init__(
        self,
        examples: Sequence[EncodedExample],
        batch_size: int,
        seed: int,
        grouped: bool = True,
    ) -> None:
        if not examples:
            raise ValueError("a batch plan needs at least one example")
        self.examples, self.batch_size, self.seed = examples, batch_size, seed
        self.grouped = grouped
        self.per_epoch = math.ceil(len(examples) / batch_size)
        self._lengths = [len(ex.input_ids) for ex in examples]
        groups = [ex.group for ex in examples]
        self._groups = groups if any(groups) else None
        self._epoch: tuple[int, list[list[int]]] = (-1, [])

    def indices(self, index: int) -> list[int]:
        """Indices (into the examples) of micro-batch `index`, counted from the first epoch."""
        epoch, pos = divmod(index, self.per_epoch)
        if self._epoch[0] != epoch:
            order = epoch_batches(
                self._lengths, self.batch_size, self.seed, epoch, self.grouped, self._groups
            )
            self._epoch = (epoch, order)
        return self._epoch[1][pos]

    def groups_seen(self, n_micro: int) -> set[str]:
        """The groups (files) of the examples in micro-batches 0 .. n_micro-1."""
        return {self.examples[i].group for b in range(n_micro) for i in self.indices(b)}

    def batch(self, index: int) -> list[EncodedExample]:
        """The examples of micro-batch `index`."""
        return [self.examples[i] for i in self.indices(index)]

    def stats(self, n_micro: int) -> BatchStats:
        """Examples, real tokens and padded tokens of micro-batches 0 .. n_micro-1."""
        examples = tokens = padded = 0
        for index in range(n_micro):
            widths = [self._lengths[i] for i in self.indices(index)]
            examples += len(widths)
            tokens += sum(widths)
            padded += max(widths) * len(widths)
        return BatchStats(examples, tokens, padded)
