"""Running the knowledge probe on a loaded model, closed-book and open-book.

Shared by the evaluate step (challenger and baseline on the same items) and the knowledge
benchmark. Closed-book asks the bare question, as `ollama run` users do; open-book puts the
top-k retrieved documents in front of it in the RAFT format, as `guardian ask` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardian.core.schema import ProbeItem, Sample
from guardian.data.context import ContextIndex
from guardian.evaluation.probe import score_answer
from guardian.ml.scoring import generate_with_cuts

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MODES = ("closed", "open")


@dataclass(frozen=True)
class ProbePrompts:
    """The prompts of one probe: per mode, one sample per item; and open-book recall."""

    samples: dict[str, list[Sample]]
    recall: list[bool]


def probe_prompts(items: Sequence[ProbeItem], index: ContextIndex, *, k: int) -> ProbePrompts:
    """Closed- and open-book prompts for every item, and whether retrieval found its answer."""
    closed = [Sample(input=item.question, output="") for item in items]
    opened: list[Sample] = []
    recall: list[bool] = []
    for item in items:
        sample, ids = index.prompt(item.question, k=k)
        opened.append(sample)
        recall.append(bool(set(ids) & set(item.doc_ids)))
    return ProbePrompts({"closed": closed, "open": opened}, recall)


def answer_probe(
    model: Any,
    tok: PreTrainedTokenizerBase,
    items: Sequence[ProbeItem],
    prompts: ProbePrompts,
    *,
    max_new_tokens: int,
    batch_size: int,
) -> dict[str, dict[str, list[Any]]]:
    """Greedy answers, their marks, and whether each ran out of tokens, per mode:
    {mode: {"answers": [...], "correct": [...], "cut": [...]}}."""
    out: dict[str, dict[str, list[Any]]] = {}
    for mode in MODES:
        answers, cuts = generate_with_cuts(
            model, tok, prompts.samples[mode], max_new_tokens, batch_size
        )
        marks = [score_answer(item, a) for item, a in zip(items, answers, strict=True)]
        out[mode] = {"answers": answers, "correct": marks, "cut": cuts}
    return out
