"""Evaluation throughput: batched vs one-by-one greedy generation on the real SmolLM2-135M.

Usage: python benchmarks/eval_throughput.py [--items 200] [--batch-size 8] [--threads N]
       [--max-new-tokens 64] [--home DIR]

Copies examples/demo-project into a git repo under --home, runs the mine and synthesize steps
with the demo playbook's params (examples/demo-skills.yaml; reused when done), and takes the
test split (cycled when it has fewer than --items samples). Both modes call the evaluate
step's generator, `guardian.ml.scoring.generate_with_cuts`, on the same items with the same
budget the evaluate step gives them (longest reference + 16 new tokens, capped by
--max-new-tokens): once with --batch-size (left-padded batches), once with batch size 1.
Prints items, new tokens (to the first end token), seconds, items/s and new tokens/s per
mode, the speed-up, and the share of items whose batched and one-by-one answers are equal.
The base is dequantised once into --home. Timings share the CPU with whatever else runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from itertools import islice
from pathlib import Path
from typing import Any

from _common import commit_tree
from raft_vs_plain import step, step_params

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class CountingModel:
    """Wraps a model's `generate` to count each row's new tokens up to its first end token."""

    def __init__(self, model: Any, eos_id: int) -> None:
        self.model, self.eos_id = model, eos_id
        self.new_tokens = 0

    def generate(self, **kwargs: Any) -> Any:
        out = self.model.generate(**kwargs)
        width = kwargs["input_ids"].shape[1]
        for row in out[:, width:].tolist():
            self.new_tokens += row.index(self.eos_id) + 1 if self.eos_id in row else len(row)
        return out


def test_items(home: Path, n: int) -> tuple[list[Any], int]:
    """n test samples of the demo project (cycled if needed) and the split's own size."""
    from guardian.steps import mine, synthesize

    work = home / "demo"
    if not (work / "repo" / ".git").is_dir():
        shutil.rmtree(work, ignore_errors=True)
        ignore = shutil.ignore_patterns(".git", "__pycache__")
        shutil.copytree(ROOT / "examples" / "demo-project", work / "repo", ignore=ignore)
        commit_tree(work / "repo", "eval throughput benchmark")
    demo = step_params(ROOT / "examples" / "demo-skills.yaml")
    chunks, _ = step(mine, mine.Params.model_validate(demo["mine"]), work, "chunks")
    synth = synthesize.Params.model_validate(demo["synthesize"])
    data, _ = step(synthesize, synth, work, "data", chunks=chunks)
    split = load_test(data)
    if not split:
        raise SystemExit(f"{data / 'test.jsonl'}: the test split is empty")
    return list(islice(_cycle(split), n)), len(split)


def load_test(data: Path) -> list[Any]:
    from guardian.core.jsonl import read_jsonl
    from guardian.core.schema import Sample

    return list(read_jsonl(data / "test.jsonl", Sample))


def _cycle(items: list[Any]) -> Any:
    while True:
        yield from items


def timed(
    model: CountingModel, tok: Any, items: list[Any], budget: int, batch: int
) -> dict[str, Any]:
    """Generate answers for items with one batch size; answers, new tokens and seconds."""
    from guardian.ml.scoring import generate_with_cuts

    model.new_tokens = 0
    t0 = time.perf_counter()
    answers, cuts = generate_with_cuts(model, tok, items, budget, batch)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    return {"answers": answers, "cut": sum(cuts), "tokens": model.new_tokens, "seconds": seconds}


def load(home: Path) -> tuple[CountingModel, Any, str]:
    """The real base model (wrapped to count new tokens), its tokenizer and its spec."""
    from guardian.ml.base_model import load_model_and_tokenizer, resolve_base

    ref = resolve_base("smollm2-135m", home)
    model, tok = load_model_and_tokenizer(ref.path)
    model.eval()
    return CountingModel(model, int(tok.eos_token_id)), tok, ref.spec


def report(results: dict[str, dict[str, Any]], n: int) -> None:
    """The per-mode table, the speed-up and the answer agreement."""
    print(f"\n{'mode':<12} {'items':>6} {'new tok':>8} {'cut':>4} {'seconds':>8} "
          f"{'items/s':>8} {'tok/s':>7}")  # fmt: skip
    for name, r in results.items():
        print(
            f"{name:<12} {n:>6} {r['tokens']:>8} {r['cut']:>4} {r['seconds']:>8.1f} "
            f"{n / r['seconds']:>8.3f} {r['tokens'] / r['seconds']:>7.1f}"
        )
    batched, single = results.values()
    print(
        f"\nspeed-up (items/s, batched / one-by-one): {single['seconds'] / batched['seconds']:.2f}x"
    )
    same = sum(a == b for a, b in zip(batched["answers"], single["answers"], strict=True))
    print(f"answers equal in both modes: {same}/{n} ({same / n:.3f})")


def main() -> None:
    """Build the items, generate them batched and one by one, print the figures."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-new-tokens", type=int, default=64, help="cap on the budget")
    ap.add_argument("--home", type=Path, default=ROOT / "build" / "bench-eval")
    args = ap.parse_args()
    home = args.home.resolve()
    os.environ["GUARDIAN_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    import torch

    from guardian import log
    from guardian.steps.evaluate import _answer_budget

    log.configure("warning", "json")
    torch.set_num_threads(args.threads)
    items, split_size = test_items(home, args.items)
    model, tok, spec = load(home)
    budget = _answer_budget(tok, items, args.max_new_tokens)
    print(f"base {spec}  threads {args.threads}  cores {os.cpu_count()}")
    cycled = " (cycled through them)" if split_size < len(items) else ""
    print(f"items {len(items)} from a test split of {split_size}{cycled}")
    print(f"max_new_tokens {budget} (longest reference + 16, cap {args.max_new_tokens})")
    print("note: timings share the CPU with any other work on this machine")
    timed(model, tok, items[:1], 4, 1)  # warm-up, not timed
    results = {
        f"batch {args.batch_size}": timed(model, tok, items, budget, args.batch_size),
        "one-by-one": timed(model, tok, items, budget, 1),
    }
    report(results, len(items))


if __name__ == "__main__":
    main()
