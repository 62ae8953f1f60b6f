"""The `validate` step: keep only the samples that pass every check (guardian/data/checks.py).

Reads the dataset artifact's train/val/test, writes the kept samples and a dataset card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from pydantic import Field

from guardian.core.jsonl import write_json
from guardian.data.card import SPLITS
from guardian.data.checks import validate_dataset
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

log = structlog.get_logger(__name__)


class Params(StepParams):
    """Validation limits and switches; lengths count characters (instruction+input, output).

    `strict_schema` makes a malformed line an error naming file:line (the pipeline's choice);
    without it such lines are dropped and listed in the card (`guardian validate-data`).
    """

    min_output_chars: int = Field(default=8, ge=1)
    max_input_chars: int = Field(default=6000, ge=1)
    max_output_chars: int = Field(default=4000, ge=1)
    dedupe: bool = True
    near_duplicates: bool = True
    near_threshold: float = Field(default=0.9, gt=0.0, le=1.0)
    grounding: bool = True
    leaks: bool = True
    strict_schema: bool = True
    card_examples: int = Field(default=5, ge=0)
    seed: int = 0


def validate_data(
    path: Path, params: Params | None = None, *, card_out: Path | None = None
) -> tuple[dict[str, Any], dict[str, int]]:
    """`guardian validate-data`: check a dataset dir or JSONL file without changing it.

    Malformed lines are reported in the card (with file:line) rather than raised. Returns the
    card and the kept count per split; `card_out` also writes the card there.
    """
    params = params or Params(strict_schema=False)
    card = validate_dataset(path, None, params)
    if card_out is not None:
        write_json(card_out, card)
    return card, dict(card["kept"])


def run(ctx: StepContext, params: Params) -> StepResult:
    """Read train/val/test from the dataset artifact, clean them and write them back out."""
    card = validate_dataset(ctx.input("dataset"), ctx.out_dir, params, require_train=True)
    dropped = sum(card["dropped"].values())
    log.info("validate.done", **card["kept"], dropped=dropped)
    metrics: dict[str, Any] = {**card["kept"], "dropped": dropped}
    metrics["ungrounded_quotes"] = card["quotes"]["ungrounded"]
    if card["oracle"]["all"]["fraction"] is not None:
        metrics["oracle_fraction"] = card["oracle"]["all"]["fraction"]
    return StepResult(
        outputs=[f"{split}.jsonl" for split in SPLITS] + ["card.json"], metrics=metrics
    )


SPEC = StepSpec(
    name="validate",
    fn=run,
    params=Params,
    needs=("dataset",),
    provides="dataset",
    version="2",
)
