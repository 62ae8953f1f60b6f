"""Encoding samples to `max_len` tokens for training and scoring, RAFT contexts sized first.

A RAFT sample too long for `max_len` loses its distractor documents, last first, before
anything is cut (data/raft.py `drop_distractors`); only then does ml/prompting.py cut the
prompt's middle, and the answer only when it alone needs more than three quarters of
`max_len`. The counts say how often each happened, for the train plan and the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from guardian.core.schema import Sample
from guardian.data.raft import drop_distractors
from guardian.ml.prompting import EncodedExample, answer_ids, encode_example, prompt_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _prompt_within(tok: PreTrainedTokenizerBase, room: int) -> Callable[[Sample], bool]:
    """Whether a sample's prompt takes at most `room` tokens."""

    def fits(sample: Sample) -> bool:
        return len(prompt_ids(tok, sample)) <= room

    return fits


def encode_fitted(
    tok: PreTrainedTokenizerBase, samples: Sequence[Sample], max_len: int
) -> tuple[list[EncodedExample], dict[str, int]]:
    """Encode every sample within `max_len`; counts of contexts shrunk and answers cut."""
    out: list[EncodedExample] = []
    shrunk = 0
    for sample in samples:
        ex = encode_example(tok, sample, max_len)
        if ex.truncated:
            room = max_len - len(answer_ids(tok, sample))
            smaller, dropped = drop_distractors(sample, _prompt_within(tok, room))
            if dropped:
                ex = encode_example(tok, smaller, max_len)
                shrunk += 1
        out.append(ex)
    counts = {
        "contexts_shrunk": shrunk,
        "truncated": sum(ex.truncated for ex in out),
        "answers_cut": sum(ex.answer_cut for ex in out),
    }
    return out, counts
