"""Answer-only loss: the decoder body on the batch, `lm_head` only where a label follows.

The loss of a causal LM needs logits only at positions whose next token is a label (not -100);
with answers a third of a sample, skipping the vocabulary projection elsewhere saves most of
its cost. peft injects LoRA layers in place, so calling the base model's body applies them.
Models whose head does more than `lm_head(hidden)` (soft-capping, logit scaling) or has no
body/head split use the plain `model(**batch).loss`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from guardian.ml.prompting import IGNORE_INDEX, EncodedExample, collate
from guardian.ml.scoring import answer_nll

if TYPE_CHECKING:
    import torch

log = structlog.get_logger(__name__)

# Config keys of heads that do more than `lm_head(hidden)`: those models use the plain loss.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def loss_parts(model: Any) -> tuple[Any, Any] | None:
    """(decoder body, lm_head) of a causal LM (peft-wrapped or not), or None for the plain path."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    prefix = getattr(base, "base_model_prefix", "")
    body = getattr(base, prefix, None) if prefix else None
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    config = getattr(base, "config", None)
    if body is None or head is None or body is base or not callable(body):
        return None
    if not type(base).__name__.endswith("ForCausalLM"):
        return None
    if any(getattr(config, key, None) not in (None, 1, 1.0) for key in _LOGIT_TRANSFORMS):
        return None
    return body, head


def label_nll(parts: tuple[Any, Any], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed NLL over label tokens != -100 and their count, `lm_head` at those positions only."""
    import torch.nn.functional as F

    body, head = parts
    out = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    logits = head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, targets[keep], reduction="sum"), int(keep.sum())


def batch_loss(
    model: Any, batch: dict[str, torch.Tensor], parts: tuple[Any, Any] | None
) -> torch.Tensor:
    """Mean NLL over the batch's label tokens: answer-only logits with `parts`, else the plain
    `model(**batch).loss`."""
    if parts is None:
        loss: torch.Tensor = model(**batch).loss
        return loss
    summed, count = label_nll(parts, batch)
    return summed / max(1, count)


def checked_parts(model: Any, batch: dict[str, torch.Tensor]) -> tuple[Any, Any] | None:
    """`loss_parts`, kept only if its loss matches the plain loss on `batch` (eval mode)."""
    import torch

    parts = loss_parts(model)
    if parts is None:
        log.info("train.plain_loss", reason="no decoder body / lm_head split")
        return None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        plain = float(model(**batch).loss)
        fast = float(batch_loss(model, batch, parts))
    model.train(was_training)
    if not abs(plain - fast) <= 1e-3 * max(1.0, abs(plain)):
        log.warning("train.plain_loss", reason="answer-only loss differs", plain=plain, fast=fast)
        return None
    return parts


def val_loss(
    model: Any,
    examples: list[EncodedExample],
    batch_size: int,
    pad_id: int,
    parts: tuple[Any, Any] | None,
) -> float | None:
    """Token-weighted mean answer NLL over `examples` in eval mode (None when there are none)."""
    import torch

    if not examples:
        return None
    was_training = model.training
    model.eval()
    if parts is None:
        per_item = answer_nll(model, examples, batch_size, pad_id)
        total, count = sum(nll for nll, _ in per_item), sum(n for _, n in per_item)
    else:
        ordered = sorted(examples, key=lambda ex: len(ex.input_ids))
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(ordered), batch_size):
                batch = collate(ordered[start : start + batch_size], pad_id)
                summed, n = label_nll(parts, batch)
                total, count = total + float(summed), count + n
    model.train(was_training)
    return total / max(1, count)
