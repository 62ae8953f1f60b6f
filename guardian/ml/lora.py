"""The LoRA/PiSSA training loop: a plain torch loop with atomic, resumable checkpoints.

AdamW with linear warmup/decay and grad clipping over length-grouped batches of chat-formatted
samples (`BatchPlan`), the loss on answer tokens only: the decoder body runs on the batch and
`lm_head` only at positions whose next token is a label. The val loss is measured every
`eval_every` steps; training stops when it has not improved for `patience` evaluations or when
`max_minutes` have passed, and the best adapter by val loss is kept. Every `checkpoint_every`
steps the adapter, optimizer, scheduler, RNG, loss log and best adapter go atomically to the
checkpoint file, so a killed run resumes exactly where it stopped. A PiSSA adapter is saved
converted to plain LoRA, so every adapter applies to the unmodified base.
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
from guardian.ml.answer_loss import batch_loss, checked_parts, val_loss
from guardian.ml.base_model import BaseModelRef, load_model_and_tokenizer
from guardian.ml.prompting import BatchPlan, EncodedExample, collate

if TYPE_CHECKING:
    import torch
    from peft import PeftModel

log = structlog.get_logger(__name__)

CHECKPOINT_FORMAT = 2


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
    eval_every: int
    patience: int
    max_minutes: float | None
    threads: int | None


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
    """What `fit` did: the loss log rows, the kept adapter's val loss, and why it stopped."""

    rows: list[dict[str, Any]]
    val_loss: float | None
    seconds: float
    resumed_from: int
    pissa_init: dict[str, torch.Tensor] | None
    steps_done: int = 0
    best_step: int | None = None
    stopped_early: bool = False
    time_budget_hit: bool = False
    examples_seen: int = 0
    pad_fraction: float = 0.0
    files_seen: int = 0


def fit(
    ref: BaseModelRef,
    params: TrainOptions,
    train_ex: list[EncodedExample],
    val_ex: list[EncodedExample],
    total: int,
    ckpt_path: Path,
    on_step: Callable[[int], None] | None,
) -> tuple[PeftModel, FitOutcome]:
    """Train up to `total` optimizer steps (resuming from `ckpt_path` when it matches), stopping
    early on val loss or time; the returned model holds the best adapter by val loss."""
    import torch
    from peft import get_peft_model_state_dict

    torch.set_num_threads(params.threads or os.cpu_count() or 1)
    model = _build_model(ref, params)
    pissa_init = None
    if params.method == "pissa":
        pissa_init = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    loop = _Loop(model, params, train_ex, val_ex, total, pissa_init)
    loop.resume(_load_checkpoint(ckpt_path, pissa_init), ckpt_path)
    seconds = loop.run(ckpt_path, on_step)
    return model, loop.outcome(seconds)


class _Loop:
    """One training run's state: optimizer, scheduler, batch plan, loss log, best adapter."""

    def __init__(
        self,
        model: PeftModel,
        params: TrainOptions,
        train_ex: list[EncodedExample],
        val_ex: list[EncodedExample],
        total: int,
        pissa_init: dict[str, torch.Tensor] | None,
    ) -> None:
        import torch

        self.model, self.params, self.val_ex, self.total = model, params, val_ex, total
        self.pissa_init = pissa_init
        config: Any = model.config
        self.pad_id = int(config.pad_token_id if config.pad_token_id is not None else 0)
        self.plan = BatchPlan(train_ex, params.batch_size, params.seed)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.trainable, lr=params.learning_rate, weight_decay=0.0
        )
        warmup = math.ceil(params.warmup_ratio * total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(warmup, total)
        )
        steps_per_epoch = math.ceil(self.plan.per_epoch / params.grad_accum)
        self.eval_every = params.eval_every or steps_per_epoch
        self.parts = checked_parts(model, collate(self.plan.batch(0)[:2], self.pad_id))
        self.rows: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.start, self.done, self.elapsed_before = 0, 0, 0.0
        self.stop: str | None = None

    def resume(self, ckpt: dict[str, Any] | None, path: Path) -> None:
        """Continue from a checkpoint, or seed the RNG for a fresh run."""
        import torch
        from peft import set_peft_model_state_dict

        if ckpt is None:
            torch.manual_seed(self.params.seed)
            return
        set_peft_model_state_dict(self.model, ckpt["adapter"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
        self.start = self.done = int(ckpt["step"])
        self.rows, self.elapsed_before = list(ckpt["rows"]), float(ckpt["elapsed"])
        self.best = ckpt["best"]
        log.info(f"resumed from step {self.start}", step=self.start, checkpoint=str(path))

    def run(self, ckpt_path: Path, on_step: Callable[[int], None] | None) -> float:
        """Train until the plan, patience or time budget ends it; returns total seconds."""
        self.model.train()
        t0 = time.monotonic()
        every = self.params.checkpoint_every
        with _Progress(self.total, self.start) as advance:
            for step in range(self.start, self.total):
                row = self.train_step(step)
                self.done = done = step + 1
                row["elapsed_s"] = self.elapsed_before + time.monotonic() - t0
                self.rows.append(row)
                advance(done, row["loss"], (time.monotonic() - t0) / (done - self.start))
                if self.val_ex and done % self.eval_every == 0 and done < self.total:
                    self.evaluate(done)
                self.stop = self._stop_reason(done, self.elapsed_before + time.monotonic() - t0)
                if self.stop is None and every and done % every == 0 and done < self.total:
                    self._save(ckpt_path, self.elapsed_before + time.monotonic() - t0)
                    fault_point("during", "train")
                if on_step is not None:
                    on_step(done)
                if self.stop is not None:
                    log.info("train.stopped", reason=self.stop, step=done, of=self.total)
                    break
        self._finish()
        return self.elapsed_before + time.monotonic() - t0

    def train_step(self, step: int) -> dict[str, Any]:
        """One optimizer step over `grad_accum` micro-batches; its loss-log row."""
        import torch

        accum = self.params.grad_accum
        self.optimizer.zero_grad(set_to_none=True)
        step_loss, tokens, padded = 0.0, 0, 0
        for k in range(accum):
            batch = collate(self.plan.batch(step * accum + k), self.pad_id)
            loss = batch_loss(self.model, batch, self.parts) / accum
            loss.backward()
            step_loss += float(loss.detach())
            tokens += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
        torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        pad = round(1.0 - tokens / padded, 4)
        return {
            "step": step + 1,
            "loss": step_loss,
            "lr": lr,
            "tokens": tokens,
            "pad_fraction": pad,
        }

    def evaluate(self, done: int) -> None:
        """Log the val loss after `done` steps; keep a copy of the adapter if it is the best."""
        from peft import get_peft_model_state_dict

        loss = val_loss(self.model, self.val_ex, self.params.batch_size, self.pad_id, self.parts)
        if loss is None:
            return
        self.rows.append({"step": done, "val_loss": loss})
        if self.best is None or loss < self.best["loss"]:
            state = get_peft_model_state_dict(self.model)
            adapter = {k: v.detach().clone() for k, v in state.items()}
            self.best = {"step": done, "loss": loss, "adapter": adapter}

    def _stop_reason(self, done: int, elapsed: float) -> str | None:
        if done >= self.total:
            return None
        if self.params.patience > 0 and self.best is not None:
            evals = [r["step"] for r in self.rows if "val_loss" in r]
            if sum(1 for s in evals if s > self.best["step"]) >= self.params.patience:
                return "early_stop"
        if self.params.max_minutes is not None and elapsed >= 60.0 * self.params.max_minutes:
            return "time_budget"
        return None

    def _finish(self) -> None:
        """Evaluate the last step (if not yet) and put the best adapter back into the model."""
        from peft import set_peft_model_state_dict

        last_eval = max((r["step"] for r in self.rows if "val_loss" in r), default=None)
        if self.val_ex and last_eval != self.done:
            self.evaluate(self.done)
        if self.best is not None and self.best["step"] != self.done:
            set_peft_model_state_dict(self.model, self.best["adapter"])
        self.model.eval()

    def _save(self, path: Path, elapsed: float) -> None:
        import torch
        from peft import get_peft_model_state_dict

        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.done,
            "adapter": get_peft_model_state_dict(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "rows": self.rows,
            "elapsed": elapsed,
            "pissa_init": self.pissa_init,
            "best": self.best,
        }
        _atomic_torch_save(state, path)

    def outcome(self, seconds: float) -> FitOutcome:
        """The run's summary; examples and padding are recomputed from the (pure) batch plan."""
        micro = self.done * self.params.grad_accum
        stats = self.plan.stats(micro)
        best = self.best
        return FitOutcome(
            rows=self.rows,
            val_loss=None if best is None else float(best["loss"]),
            seconds=seconds,
            resumed_from=self.start,
            pissa_init=self.pissa_init,
            steps_done=self.done,
            best_step=None if best is None else int(best["step"]),
            stopped_early=self.stop == "early_stop",
            time_budget_hit=self.stop == "time_budget",
            examples_seen=stats.examples,
            pad_fraction=round(stats.pad_fraction, 4),
            files_seen=len(self.plan.groups_seen(micro) - {""}),
        )


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
