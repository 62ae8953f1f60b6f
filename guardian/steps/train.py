"""The `train` step: LoRA or PiSSA fine-tuning of the base model on a dataset, resumable.

A plain torch loop (AdamW, linear warmup/decay, grad clipping) over chat-formatted samples
with the loss on answer tokens only. Every `checkpoint_every` steps the adapter, optimizer,
scheduler and RNG state go atomically to `<home>/checkpoints/`, so a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import Field

from guardian.errors import ConfigError, DataError
from guardian.models import BaseModelRef, load_model_and_tokenizer, load_tokenizer, resolve_base
from guardian.prompting import EncodedExample, collate, encode_example
from guardian.records import Sample, read_jsonl, write_json, write_jsonl
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec
from guardian.steps.evaluate import answer_nll, spread

if TYPE_CHECKING:
    import torch
    from peft import PeftModel

log = structlog.get_logger(__name__)

CHECKPOINT_FORMAT = 1
# Single-batch losses are noisy; the first/last figures in metrics average this many steps.
LOSS_WINDOW = 5


class Params(StepParams):
    """Fine-tuning hyper-parameters; `max_steps=0` means train for `epochs` instead."""

    base: str = "smollm2-135m"
    method: Literal["lora", "pissa"] = "lora"
    r: int = Field(default=8, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1
    )
    learning_rate: float = Field(default=2e-4, gt=0)
    max_steps: int = Field(default=60, ge=0)
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=4, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    max_len: int = Field(default=256, ge=32)
    warmup_ratio: float = Field(default=0.05, ge=0.0, le=1.0)
    seed: int = 0
    checkpoint_every: int = Field(default=10, ge=0)
    val_max_items: int = Field(default=64, ge=0, description="val samples for the loss (0 = all)")
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
    train_samples = list(read_jsonl(train_file, Sample))
    if not train_samples:
        raise DataError(f"{train_file}: training set is empty")
    all_val = list(read_jsonl(dataset / "val.jsonl", Sample))
    val_samples = [all_val[i] for i in spread(len(all_val), params.val_max_items)]

    ref = resolve_base(params.base, ctx.home, convert=not params.dry_run)
    tok = load_tokenizer(ref)
    train_ex = [encode_example(tok, s, params.max_len) for s in train_samples]
    val_ex = [encode_example(tok, s, params.max_len) for s in val_samples]
    total = total_steps(len(train_ex), params)
    plan = _plan(ref, params, train_ex, val_ex, total)
    write_json(ctx.out_dir / "train_plan.json", plan)
    if params.dry_run:
        log.info("train dry run", n_train=len(train_ex), steps=total, base=ref.spec)
        dry = {"dry_run": True, "n_train": len(train_ex), "steps": total}
        return Trained(StepResult(outputs=["train_plan.json"], metrics=dry), None)

    ckpt_path = ctx.home / "checkpoints" / f"train-{_checkpoint_key(train_file, params, ref)}.pt"
    model, outcome = _fit(ref, params, train_ex, val_ex, total, ckpt_path, on_step)
    _save_adapter(model, outcome.pissa_init, ctx.out_dir / "adapter")
    write_jsonl(ctx.out_dir / "loss_log.jsonl", outcome.rows)
    write_json(ctx.out_dir / "base.json", ref.model_dump(mode="json"))
    ckpt_path.unlink(missing_ok=True)
    losses = [row["loss"] for row in outcome.rows if "loss" in row]
    metrics: dict[str, Any] = {
        "train_loss_first": _mean(losses[:LOSS_WINDOW]),
        "train_loss_last": _mean(losses[-LOSS_WINDOW:]),
        "val_loss": outcome.val_loss,
        "steps": total,
        "n_train": len(train_ex),
        "seconds": round(outcome.seconds, 2),
        "resumed_from": outcome.resumed_from,
    }
    log.info("train finished", **metrics)
    outputs = ["adapter", "loss_log.jsonl", "train_plan.json", "base.json"]
    return Trained(StepResult(outputs=outputs, metrics=metrics), model)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


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
    }


def _plan(
    ref: BaseModelRef,
    params: Params,
    train_ex: list[EncodedExample],
    val_ex: list[EncodedExample],
    total: int,
) -> dict[str, Any]:
    return {
        "base": {"spec": ref.spec, "fingerprint": ref.fingerprint, "path": str(ref.path)},
        "method": params.method,
        "params": params.model_dump(mode="json"),
        "n_train": len(train_ex),
        "n_val": len(val_ex),
        "steps": total,
        "examples_seen": total * params.batch_size * params.grad_accum,
        "tokens": {"train": _token_stats(train_ex), "val": _token_stats(val_ex)},
    }


def _checkpoint_key(train_file: Path, params: Params, ref: BaseModelRef) -> str:
    digest = hashlib.sha256(train_file.read_bytes()).hexdigest()
    knobs = params.model_dump(mode="json", exclude={"dry_run", "threads"})
    blob = json.dumps({"train": digest, "params": knobs, "base": ref.fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _micro_batch(
    examples: list[EncodedExample], index: int, params: Params
) -> list[EncodedExample]:
    import torch

    per_epoch = math.ceil(len(examples) / params.batch_size)
    epoch, pos = divmod(index, per_epoch)
    gen = torch.Generator().manual_seed(params.seed * 1_000_003 + epoch)
    order = torch.randperm(len(examples), generator=gen).tolist()
    return [examples[i] for i in order[pos * params.batch_size : (pos + 1) * params.batch_size]]


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _build_model(ref: BaseModelRef, params: Params) -> PeftModel:
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(params.seed)
    model, _ = load_model_and_tokenizer(ref.path)
    model.config.use_cache = False
    init: Any = "pissa_niter_4" if params.method == "pissa" else True
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=list(params.target_modules),
        init_lora_weights=init,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"train params: target_modules {params.target_modules}: {exc}") from exc


@dataclass
class _Outcome:
    rows: list[dict[str, Any]]
    val_loss: float | None
    seconds: float
    resumed_from: int
    pissa_init: dict[str, torch.Tensor] | None


def _fit(
    ref: BaseModelRef,
    params: Params,
    train_ex: list[EncodedExample],
    val_ex: list[EncodedExample],
    total: int,
    ckpt_path: Path,
    on_step: Callable[[int], None] | None,
) -> tuple[PeftModel, _Outcome]:
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    torch.set_num_threads(params.threads or os.cpu_count() or 1)
    model = _build_model(ref, params)
    pissa_init = None
    if params.method == "pissa":
        pissa_init = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    pad_id = int(model.config.pad_token_id if model.config.pad_token_id is not None else 0)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate, weight_decay=0.0)
    warmup = math.ceil(params.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(warmup, total))

    rows: list[dict[str, Any]] = []
    start, elapsed_before = 0, 0.0
    ckpt = _load_checkpoint(ckpt_path, pissa_init)
    if ckpt is not None:
        set_peft_model_state_dict(model, ckpt["adapter"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
        start, rows, elapsed_before = int(ckpt["step"]), list(ckpt["rows"]), float(ckpt["elapsed"])
        log.info(f"resumed from step {start}", step=start, checkpoint=str(ckpt_path))
    else:
        torch.manual_seed(params.seed)

    model.train()
    t0 = time.monotonic()
    with _Progress(total, start) as advance:
        for step in range(start, total):
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for k in range(params.grad_accum):
                batch = collate(
                    _micro_batch(train_ex, step * params.grad_accum + k, params), pad_id
                )
                loss = model(**batch).loss / params.grad_accum
                loss.backward()
                step_loss += float(loss.detach())
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            elapsed = elapsed_before + time.monotonic() - t0
            rows.append({"step": step + 1, "loss": step_loss, "lr": lr, "elapsed_s": elapsed})
            advance(step + 1, step_loss, (time.monotonic() - t0) / (step + 1 - start))
            done = step + 1
            if params.checkpoint_every and done % params.checkpoint_every == 0 and done < total:
                state = {
                    "format": CHECKPOINT_FORMAT,
                    "step": done,
                    "adapter": get_peft_model_state_dict(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "rows": rows,
                    "elapsed": elapsed,
                    "pissa_init": pissa_init,
                }
                _atomic_torch_save(state, ckpt_path)
            if on_step is not None:
                on_step(done)

    model.eval()
    val_loss = None
    if val_ex:
        per_item = answer_nll(model, val_ex, params.batch_size, pad_id)
        tokens = sum(n for _, n in per_item)
        val_loss = sum(nll for nll, _ in per_item) / max(1, tokens)
    rows.append({"step": total, "val_loss": val_loss})
    seconds = elapsed_before + time.monotonic() - t0
    return model, _Outcome(rows, val_loss, seconds, start, pissa_init)


def _atomic_torch_save(state: dict[str, Any], path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_checkpoint(
    path: Path, pissa_init: dict[str, torch.Tensor] | None
) -> dict[str, Any] | None:
    import torch

    if not path.is_file():
        return None
    try:
        ckpt: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        log.warning("checkpoint unreadable, starting over", checkpoint=str(path), error=str(exc))
        return None
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        log.warning("checkpoint format differs, starting over", checkpoint=str(path))
        return None
    saved_init = ckpt.get("pissa_init")
    if pissa_init is not None and (
        saved_init is None
        or saved_init.keys() != pissa_init.keys()
        or not all(torch.allclose(saved_init[k], v, atol=1e-5) for k, v in pissa_init.items())
    ):
        log.warning("pissa init differs from checkpoint, starting over", checkpoint=str(path))
        return None
    return ckpt


def _save_adapter(model: PeftModel, pissa_init: dict[str, torch.Tensor] | None, out: Path) -> None:
    """Save the adapter; a PiSSA adapter is converted to plain LoRA on the unmodified base."""
    if pissa_init is None:
        model.save_pretrained(str(out))
        return
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="pissa-init-") as tmp:
        init_dir = Path(tmp) / "pissa_init"
        init_dir.mkdir()
        save_file(
            {k: v.contiguous() for k, v in pissa_init.items()},
            init_dir / "adapter_model.safetensors",
        )
        model.save_pretrained(str(out), path_initial_model_for_weight_conversion=str(init_dir))


class _Progress:
    """Rich progress bar on a TTY, else a structlog line every ~10 steps."""

    def __init__(self, total: int, start: int) -> None:
        self.total, self.start = total, start
        self.bar: Any = None

    def __enter__(self) -> Callable[[int, float, float], None]:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, completed=self.start)
        return self.advance

    def advance(self, step: int, loss: float, s_per_step: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, description=f"train loss {loss:.3f}")
        elif step % 10 == 0 or step == self.total:
            log.info(
                "train step",
                step=step,
                of=self.total,
                loss=round(loss, 4),
                s_per_step=round(s_per_step, 2),
            )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def base_fingerprint(params: Params, home: Path) -> str:
    """The base model's fingerprint (without converting it), so a changed base retrains."""
    return resolve_base(params.base, home, convert=False).fingerprint


SPEC = StepSpec(
    name="train",
    fn=run,
    params=Params,
    needs=("dataset",),
    provides="model",
    extra_key=base_fingerprint,
)
