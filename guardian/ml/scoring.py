"""Scoring a causal LM on samples: summed answer-token NLL and greedy generation, batched."""

from __future__ import annotations

from typing import TYPE_CHECKING

from guardian.core.schema import Sample
from guardian.ml.prompting import IGNORE_INDEX, EncodedExample, collate, prompt_ids

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def answer_nll(
    model: PreTrainedModel | PeftModel,
    examples: list[EncodedExample],
    batch_size: int,
    pad_id: int,
) -> list[tuple[float, int]]:
    """Per example: (summed NLL over label tokens != -100, number of such tokens)."""
    import torch
    import torch.nn.functional as F

    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    results: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate([examples[i] for i in idx], pad_id)
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            targets = batch["labels"][:, 1:]
            nll = F.cross_entropy(
                logits[:, :-1].float().transpose(1, 2),
                targets,
                ignore_index=IGNORE_INDEX,
                reduction="none",
            )
            mask = targets != IGNORE_INDEX
            sums = (nll * mask).sum(dim=1).tolist()
            counts = mask.sum(dim=1).tolist()
            for row, i in enumerate(idx):
                results[i] = (float(sums[row]), int(counts[row]))
    return results


def generate_answers(
    model: PreTrainedModel | PeftModel,
    tok: PreTrainedTokenizerBase,
    samples: list[Sample],
    max_new_tokens: int,
    batch_size: int,
    *,
    grounded: bool = False,
) -> list[str]:
    """Greedy answers for samples (left-padded batches), decoded without special tokens."""
    return generate_with_cuts(model, tok, samples, max_new_tokens, batch_size, grounded=grounded)[0]


def generate_with_cuts(
    model: PreTrainedModel | PeftModel,
    tok: PreTrainedTokenizerBase,
    samples: list[Sample],
    max_new_tokens: int,
    batch_size: int,
    *,
    grounded: bool = False,
) -> tuple[list[str], list[bool]]:
    """Greedy answers, and for each whether it was cut: used every new token, no end token.

    `grounded` keeps every quote verbatim from the sample's input (ml/grounding.py).
    """
    import torch
    from transformers import LogitsProcessorList

    from guardian.ml.grounding import QuoteGrounding

    pad_id = int(tok.pad_token_id)
    answers: list[str] = []
    cuts: list[bool] = []
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        prompts = [prompt_ids(tok, s) for s in batch]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        processors = LogitsProcessorList()
        if grounded:
            processors.append(QuoteGrounding(tok, [s.input for s in batch], width))
        with torch.no_grad():
            out = model.generate(  # type: ignore[operator]
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=pad_id,
                eos_token_id=tok.eos_token_id,
                logits_processor=processors,
            )
        new = out[:, width:]
        for row in new:
            ids = row.tolist()
            answers.append(str(tok.decode(ids, skip_special_tokens=True)).strip())
            cuts.append(len(ids) >= max_new_tokens and tok.eos_token_id not in ids)
    return answers, cuts


def spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when k is 0 or >= n); deterministic."""
    if k <= 0 or k >= n:
        return list(range(n))
    return [i * n // k for i in range(k)]
