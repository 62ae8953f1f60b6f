"""The `train` step: LoRA or PiSSA fine-tuning of the base model on a dataset, resumable.

The loop itself is `guardian.ml.lora.fit`; its checkpoints live in `<home>/checkpoints/`, so a
killed run resumes. This step reads the dataset, plans, and writes the adapter and logs.
By default it trains all-linear LoRA for `epochs` over the data, checks the val loss once an
epoch, stops when it has not improved for `patience` checks, and keeps the best adapter.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import Field

from guardian.core.jsonl import read_jsonl, write_json, write_jsonl
from guardian.core.schema import Sample
from guardian.errors import DataError
from guardian.ml.base_model import (
    BaseModelRef,
    load_tokenizer,
    resolve_base,
)
from guardian.ml.lora import FitOutcome, fit, save_adapter
from guardian.ml.prompting import BatchPlan, BatchStats, EncodedExample
from guardian.ml.replay import replay_digest, replay_samples
from guardian.ml.scoring import spread
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec
from guardian.steps.encoding import encode_fitted

if TYPE_CHECKING:
    from peft import PeftModel

log = structlog.get_logger(__name__)

# Single-batch losses are noisy; the first/last figures in metrics average this many steps.
LOSS_WINDOW = 5
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Params(StepParams):
    """Fine-tuning hyper-parameters; `max_steps=0` means train for `epochs` instead."""

    base: str = "smollm2-135m"
    method: Literal["lora", "pissa"] = "lora"
    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_LINEAR), min_length=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    max_steps: int = Field(default=0, ge=0)
    epochs: float = Field(default=3.0, gt=0)
    batch_size: int = Field(default=4, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    max_len: int = Field(default=256, ge=32)
    warmup_ratio: float = Field(default=0.05, ge=0.0, le=1.0)
    seed: int = 0
    checkpoint_every: int = Field(default=10, ge=0)
    val_max_items: int = Field(default=64, ge=0, description="val samples for the loss (0 = all)")
    eval_every: int = Field(default=0, ge=0, description="steps between val checks (0 = epoch)")
    patience: int = Field(default=2, ge=0, description="val checks without gain to stop (0 = off)")
    max_minutes: float | None = Field(default=None, gt=0, description="training time budget")
    replay_fraction: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="base-answered general questions mixed in against forgetting, as a share "
        "of the training samples (0 = none; ml/replay)",
    )
    dry_run: bool = False
    threads: int | None = Field(default=None, gt=0)


@dataclass
class Trained:
    """What a training run produced: the step result and, unless dry-run, the live model."""

    result: StepResult
    model: PeftModel | None


def run(ctx: StepContext, params: Params) -> StepResult:
    """Train an adapter on ctx.input('dataset'), writing adapter/, loss_log.jsonl and plans."""
    return train_model(ctx, params).result


def train_model(
    ctx: StepContext, params: Params, on_step: Callable[[int], None] | None = None
) -> Trained:
    """Run the step and also return the in-memory model; `on_step(n)` runs after each step."""
    dataset = ctx.input("dataset")
    train_file = dataset / "train.jsonl"
    every = list(read_jsonl(train_file, Sample))
    if not every:
        raise DataError(f"{train_file}: training set is empty")
    train_samples = [s for s in every if s.input.strip() and s.output.strip()]
    if not train_samples:
        raise DataError(
            f"{train_file}: no trainable samples (all {len(every)} have an empty input or output)"
        )
    if len(train_samples) < len(every):
        log.warning("train.empty_samples_dropped", dropped=len(every) - len(train_samples))
    all_val = list(read_jsonl(dataset / "val.jsonl", Sample))
    val_samples = [all_val[i] for i in spread(len(all_val), params.val_max_items)]

    ref = resolve_base(params.base, ctx.home, convert=not params.dry_run)
    tok = load_tokenizer(ref)
    n_train = len(train_samples)
    # A dry run plans for the replay share without loading the base to generate it.
    replay_wanted = round(params.replay_fraction * n_train)
    replay = [] if params.dry_run else replay_samples(ref, ctx.home, replay_wanted, params.seed)
    n_replay = replay_wanted if params.dry_run else len(replay)
    train_ex, fitting = encode_fitted(tok, train_samples + replay, params.max_len)
    val_ex, _ = encode_fitted(tok, val_samples, params.max_len)
    total = total_steps(n_train + n_replay, params)
    planned = BatchPlan(train_ex, params.batch_size, params.seed).stats(total * params.grad_accum)
    plan = _plan(ref, params, train_ex, val_ex, total, planned)
    plan["fitting"] = fitting
    plan["n_train"], plan["n_replay"] = n_train, n_replay
    write_json(ctx.out_dir / "train_plan.json", plan)
    if params.dry_run:
        log.info("train dry run", n_train=n_train, n_replay=n_replay, steps=total, base=ref.spec)
        dry = {"dry_run": True, "n_train": n_train, "n_replay": n_replay, "steps": total}
        dry |= fitting
        return Trained(StepResult(outputs=["train_plan.json"], metrics=dry), None)

    ckpt_path = ctx.home / "checkpoints" / f"train-{_checkpoint_key(train_file, params, ref)}.pt"
    model, outcome = fit(ref, params, train_ex, val_ex, total, ckpt_path, on_step)
    save_adapter(model, outcome.pissa_init, ctx.out_dir / "adapter")
    write_jsonl(ctx.out_dir / "loss_log.jsonl", outcome.rows)
    write_json(ctx.out_dir / "base.json", ref.model_dump(mode="json"))
    n_files = len({ex.group for ex in train_ex} - {""})
    metrics = _metrics(outcome, total, (n_train, n_replay), planned, n_files) | fitting
    log.info("train finished", **metrics)
    outputs = ["adapter", "loss_log.jsonl", "train_plan.json", "base.json"]
    return Trained(StepResult(outputs=outputs, metrics=metrics, discard=[ckpt_path]), model)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _metrics(
    outcome: FitOutcome,
    total: int,
    counts: tuple[int, int],
    planned: BatchStats,
    n_files: int,
) -> dict[str, Any]:
    """The step's metrics; `coverage` is examples seen / examples the plan would have seen,
    `files_covered` the share of the training files (`metadata.path`) those examples are about.
    `counts` are the dataset's samples and the replay samples mixed in beside them."""
    n_train, n_replay = counts
    losses = [row["loss"] for row in outcome.rows if "loss" in row]
    return {
        "train_loss_first": _mean(losses[:LOSS_WINDOW]),
        "train_loss_last": _mean(losses[-LOSS_WINDOW:]),
        "val_loss": outcome.val_loss,
        "steps": outcome.steps_done,
        "steps_planned": total,
        "n_train": n_train,
        "n_replay": n_replay,
        "epochs_done": round(outcome.examples_seen / (n_train + n_replay), 3),
        "coverage": round(outcome.examples_seen / max(1, planned.examples), 4),
        "files_covered": round(outcome.files_seen / n_files, 4) if n_files else None,
        "pad_fraction": outcome.pad_fraction,
        "best_step": outcome.best_step,
        "stopped_early": outcome.stopped_early,
        "time_budget_hit": outcome.time_budget_hit,
        "seconds": round(outcome.seconds, 2),
        "resumed_from": outcome.resumed_from,
    }


def total_steps(n_train: int, params: Params) -> int:
    """Optimizer steps for a run: max_steps if set, else epochs over the training set."""
    if params.max_steps > 0:
        return params.max_steps
    micro_per_epoch = math.ceil(n_train / params.batch_size)
    return max(1, math.ceil(params.epochs * micro_per_epoch / params.grad_accum))


def _token_stats(examples: list[EncodedExample]) -> dict[str, Any]:
    lengths = sorted(ex.full_len for ex in examples)
    if not lengths:
        return {"n": 0}
    return {
        "n": len(lengths),
        "min": lengths[0],
        "max": lengths[-1],
        "mean": round(sum(lengths) / len(lengths), 1),
        "p95": lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        "answer_tokens": sum(ex.answer_tokens for ex in examples),
        "truncated": sum(1 for ex in examples if ex.truncated),
        "answers_cut": sum(1 for ex in examples if ex.answer_cut),
    }


def _plan(
    ref: BaseModelRef,
    params: Params,
    train_ex: list[EncodedExample],
    val_ex: list[EncodedExample],
    total: int,
    planned: BatchStats,
) -> dict[str, Any]:
    return {
        "base": {"spec": ref.spec, "fingerprint": ref.fingerprint, "path": str(ref.path)},
        "method": params.method,
        "params": params.model_dump(mode="json"),
        "n_train": len(train_ex),
        "n_val": len(val_ex),
        "steps": total,
        "examples_seen": planned.examples,
        "pad_fraction": round(planned.pad_fraction, 4),
        "tokens": {"train": _token_stats(train_ex), "val": _token_stats(val_ex)},
    }


def _checkpoint_key(train_file: Path, params: Params, ref: BaseModelRef) -> str:
    digest = hashlib.sha256(train_file.read_bytes()).hexdigest()
    # Neither the thread count nor the time budget changes the steps taken, so a killed run
    # resumes under a new value of either.
    knobs = params.model_dump(mode="json", exclude={"dry_run", "threads", "max_minutes"})
    replay = replay_digest() if params.replay_fraction > 0 else None
    blob = json.dumps(
        {"train": digest, "params": knobs, "base": ref.fingerprint, "replay": replay},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def base_fingerprint(params: Params, home: Path) -> str:
    """The base model's fingerprint (without converting it), so a changed base retrains, and
    the replay set's digest when the run mixes it in."""
    fingerprint = resolve_base(params.base, home, convert=False).fingerprint
    return f"{fingerprint}:replay-{replay_digest()}" if params.replay_fraction > 0 else fingerprint


SPEC = StepSpec(
    name="train",
    fn=run,
    params=Params,
    needs=("dataset",),
    provides="model",
    version="4",
    extra_key=base_fingerprint,
    unkeyed=frozenset({"threads"}),
    libraries=("torch", "transformers", "peft"),
)
