"""Training throughput: our loop vs the plain transformers.Trainer + peft run a user would write.

Same base model, data, batch size, LoRA config, learning-rate schedule and optimizer steps.
(a) `guardian.ml.lora.fit`: length-grouped batches, logits only at answer positions.
(b) `transformers.Trainer`: random sampler, `DataCollatorForSeq2Seq` right padding, full logits.
Prints, for each: real (non-pad) tokens/s, pad fraction, s/step, final train loss (mean of the
last 5 steps) and the val loss after training (one shared scorer, outside the timing).

Usage: python benchmarks/train_throughput.py --dataset DATA [--steps 20] [--batch-size 8]
       [--ours-steps 40]   (our loop for more steps: compare at about equal wall time)
       python benchmarks/train_throughput.py --tiny          (tiny random model, a quick check)
DATA is a dataset dir (train.jsonl, val.jsonl) or one samples JSONL split by metadata.split.
The default playbook's workload (RAFT samples, max_len 512) from the demo project:
  guardian mine examples/demo-project -o build/chunks.jsonl
  guardian synthesize build/chunks.jsonl -o build/samples.jsonl
(`--plain` gives short template samples of ~85 tokens: less padding for the Trainer to waste.)
The base is the real SmolLM2-135M (`smollm2-135m`), converted once into --home.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load_samples(data: Path) -> tuple[list[Any], list[Any]]:
    """(train, val) samples of a dataset dir, or of one JSONL split by metadata.split."""
    from guardian.core.jsonl import read_jsonl
    from guardian.core.schema import Sample

    if data.is_dir():
        val = data / "val.jsonl"
        train = list(read_jsonl(data / "train.jsonl", Sample))
        return train, list(read_jsonl(val, Sample)) if val.is_file() else []
    rows = list(read_jsonl(data, Sample))
    train = [r for r in rows if r.metadata.get("split", "train") == "train"]
    return train, [r for r in rows if r.metadata.get("split") == "val"]


def mean_val_loss(model: Any, val_ex: list[Any], batch_size: int, pad_id: int) -> float:
    """Token-weighted mean answer NLL (the same scorer for both runs)."""
    from guardian.ml.scoring import answer_nll

    model.eval()
    per_item = answer_nll(model, val_ex, batch_size, pad_id)
    return sum(s for s, _ in per_item) / max(1, sum(n for _, n in per_item))


def run_ours(ref: Any, params: Any, train_ex: list[Any], work: Path) -> tuple[Any, dict[str, Any]]:
    """Our loop for params.max_steps steps; its figures from the loss log."""
    from guardian.ml.lora import fit

    model, outcome = fit(ref, params, train_ex, [], params.max_steps, work / "none.pt", None)
    rows = [r for r in outcome.rows if "loss" in r]
    seconds = rows[-1]["elapsed_s"]
    tokens = sum(r["tokens"] for r in rows)
    losses = [r["loss"] for r in rows]
    return model, {
        "seconds": seconds,
        "tokens": tokens,
        "pad_fraction": outcome.pad_fraction,
        "loss_last5": sum(losses[-5:]) / len(losses[-5:]),
        "steps": len(rows),
    }


def run_trainer(
    ref: Any, params: Any, train_ex: list[Any], tok: Any, work: Path
) -> tuple[Any, dict[str, Any]]:
    """A default Trainer + peft run: random sampler, right padding, logging every step."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from guardian.ml.lora import _build_model

    model = _build_model(ref, params)
    data = [
        {"input_ids": ex.input_ids, "attention_mask": [1] * len(ex.input_ids), "labels": ex.labels}
        for ex in train_ex
    ]
    pad = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt")
    seen = {"tokens": 0, "batch_tokens": 0}

    def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = pad(features)
        seen["tokens"] += int(batch["attention_mask"].sum())
        seen["batch_tokens"] += batch["attention_mask"].numel()
        return dict(batch)

    clock: dict[str, float] = {}

    class Clock(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            clock["start"] = time.monotonic()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            clock["end"] = time.monotonic()

    args = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=params.batch_size,
        max_steps=params.max_steps,
        learning_rate=params.learning_rate,
        warmup_steps=params.warmup_ratio,
        lr_scheduler_type="linear",
        weight_decay=0.0,
        max_grad_norm=1.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=params.seed,
        train_sampling_strategy="random",
        remove_unused_columns=False,
        label_names=["labels"],
        disable_tqdm=True,
        dataloader_pin_memory=False,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[Clock()]
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return model, {
        "seconds": clock["end"] - clock["start"],
        "tokens": seen["tokens"],
        "pad_fraction": 1 - seen["tokens"] / max(1, seen["batch_tokens"]),
        "loss_last5": sum(losses[-5:]) / len(losses[-5:]),
        "steps": len(losses),
    }


def setup(args: argparse.Namespace, work: Path) -> tuple[Any, Any, list[Any], list[Any]]:
    """(base ref, tokenizer, encoded train, encoded val) for the chosen model and data."""
    from guardian.ml.base_model import load_tokenizer, resolve_base
    from guardian.ml.prompting import encode_example
    from guardian.ml.scoring import spread
    from tests.tinymodel import make_tiny_base, tiny_dataset

    if args.tiny:
        ref = resolve_base(str(make_tiny_base(work / "tiny-base")), args.home)
    else:
        ref = resolve_base("smollm2-135m", args.home)
    data = args.dataset or (tiny_dataset(work / "tiny-data") if args.tiny else None)
    if data is None:
        sys.exit("--dataset DIR_OR_JSONL is required without --tiny (see --help)")
    train, val = load_samples(data)
    train = [s for s in train if s.input.strip() and s.output.strip()]
    val = [val[i] for i in spread(len(val), args.val_items)]
    tok = load_tokenizer(ref)
    train_ex = [encode_example(tok, s, args.max_len) for s in train]
    return ref, tok, train_ex, [encode_example(tok, s, args.max_len) for s in val]


def main() -> None:
    """Run both trainings and print their figures side by side."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dataset", type=Path, help="dataset dir or samples JSONL")
    ap.add_argument("--tiny", action="store_true", help="tiny random model (quick check)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--ours-steps", type=int, help="steps of our loop (default --steps)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=512, help="the playbook's max_len")
    ap.add_argument("--val-items", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--home", type=Path, default=ROOT / "build" / "bench-home")
    args = ap.parse_args()

    import torch

    from guardian import log
    from guardian.steps.train import Params

    log.configure("warning", "json")
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="guardian-train-bench-"))
    ref, tok, train_ex, val_ex = setup(args, work)
    params = Params(
        base=ref.spec,
        max_steps=args.steps,
        batch_size=args.batch_size,
        max_len=args.max_len,
        threads=args.threads,
        checkpoint_every=0,
        patience=0,
        warmup_ratio=0.0,  # the same linear decay from the first step in both schedules
    )
    print(f"base {ref.spec}  train {len(train_ex)}  val {len(val_ex)}  threads {args.threads}")
    print(
        f"steps {args.steps}  batch {args.batch_size}  LoRA r {params.r} alpha {params.alpha} "
        f"lr {params.learning_rate} on {','.join(params.target_modules)}"
    )
    ours_params = params.model_copy(update={"max_steps": args.ours_steps or args.steps})
    results = {}
    for name, runner in (
        ("ours", lambda: run_ours(ref, ours_params, train_ex, work)),
        ("trainer", lambda: run_trainer(ref, params, train_ex, tok, work)),
    ):
        model, figures = runner()
        figures["val_loss"] = mean_val_loss(model, val_ex, args.batch_size, int(tok.pad_token_id))
        results[name] = figures
        del model
    header = ("run", "real tok/s", "pad frac", "s/step", "loss(last5)", "val")
    print("\n{:<8} {:>10} {:>9} {:>7} {:>11} {:>7}".format(*header))
    for name, f in results.items():
        print(
            f"{name:<8} {f['tokens'] / f['seconds']:10.1f} {f['pad_fraction']:9.3f} "
            f"{f['seconds'] / f['steps']:7.2f} {f['loss_last5']:11.4f} {f['val_loss']:7.4f}  "
            f"({f['steps']} steps, {f['seconds']:.0f} s)"
        )
    ours, theirs = results["ours"], results["trainer"]
    shutil.rmtree(work, ignore_errors=True)
    speedup = (ours["tokens"] / ours["seconds"]) / (theirs["tokens"] / theirs["seconds"])
    print(f"\nreal tokens/s, ours / trainer: {speedup:.2f}x")


if __name__ == "__main__":
    main()
