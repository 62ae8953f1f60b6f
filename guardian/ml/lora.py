"""The LoRA/PiSSA training loop: a plain torch loop with atomic, resumable checkpoints.

AdamW with linear warmup/decay and grad clipping over chat-formatted samples, the loss on
answer tokens only. Every `checkpoint_every` steps the adapter, optimizer, scheduler and RNG
state go atomically to the checkpoint file, so a killed run resumes where it stopped. A PiSSA
adapter is saved converted to plain LoRA, so every adapter applies to the unmodified base.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog

from guardian.core.faults import fault_point
from guardian.core.fsutil import atomic_write
from guardian.errors import ConfigError
from guardian.ml.base_model import BaseModelRef, load_model_and_tokenizer
from guardian.ml.prompting import EncodedExample, collate
from guardian.ml.scoring import answer_nll

if TYPE_CHECKING:
    import torch
    from peft import PeftModel

log = structlog.get_logger(__name__)

CHECKPOINT_FORMAT = 1


class TrainOptions(Protocol):
    """The hyper-parameters the loop reads (the train step's params provide them)."""

    method: Literal["lora", "pissa"]
    r: int
    alpha: int
    dropout: float
    target_modules: list[str]
    learning_rate: float
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    seed: int
    checkpoint_every: int
    threads: int | None


def _micro_batch(
    examples: list[EncodedExample], index: int, params: TrainOptions
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


def _build_model(ref: BaseModelRef, params: TrainOptions) -> PeftModel:
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
class FitOutcome:
    rows: list[dict[str, Any]]
    val_loss: float | None
    seconds: float
    resumed_from: int
    pissa_init: dict[str, torch.Tensor] | None


def fit(
    ref: BaseModelRef,
    params: TrainOptions,
    train_ex: list[EncodedExample],
    val_ex: list[EncodedExample],
    total: int,
    ckpt_path: Path,
    on_step: Callable[[int], None] | None,
) -> tuple[PeftModel, FitOutcome]:
    """Train `total` optimizer steps (resuming from `ckpt_path` when it matches); val loss after."""
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
                fault_point("during", "train")
            if on_step is not None:
                on_step(done)

    model.eval()
    val_loss = _mean_nll(model, val_ex, params.batch_size, pad_id)
    rows.append({"step": total, "val_loss": val_loss})
    seconds = elapsed_before + time.monotonic() - t0
    return model, FitOutcome(rows, val_loss, seconds, start, pissa_init)


def _mean_nll(
    model: PeftModel, examples: list[EncodedExample], batch_size: int, pad_id: int
) -> float | None:
    """Token-weighted mean answer NLL over `examples` (None when there are none)."""
    if not examples:
        return None
    per_item = answer_nll(model, examples, batch_size, pad_id)
    tokens = sum(n for _, n in per_item)
    return sum(nll for nll, _ in per_item) / max(1, tokens)


def _atomic_torch_save(state: dict[str, Any], path: Path) -> None:
    import torch

    with atomic_write(path, binary=True) as out:
        torch.save(state, out)


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


def save_adapter(model: PeftModel, pissa_init: dict[str, torch.Tensor] | None, out: Path) -> None:
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
