"""GGUF export parity: llama.cpp on our f16 / q8_0 exports vs the torch model they came from.

Usage: python benchmarks/gguf_parity.py [--items 50] [--new-tokens 16] [--train-steps 6]
       [--threads 2] [--home DIR]

The real SmolLM2-135M is fine-tuned by the train step (--train-steps steps on the shipped
guard set less --items held-out items spread over it; reused when done), and the held-out
items are scored by the torch model (base + adapter through peft) and, per quant, by
llama-cpp-python on `guardian/export/gguf.py`'s merged export (guardian/export/parity.py,
what tests/export/test_llama_cpp.py checks). Prints per quant: export seconds and file size,
answer perplexity torch vs llama.cpp and the relative difference, greedy agreement (whole
answers of --new-tokens tokens, and their first 4 tokens), llama.cpp tokens/s (scoring the
items batched; greedy decoding, all items as one batch; one stream of 64 tokens, as a
server answers one request) and whether our q8_0 tensors equal llama.cpp's own quantizer's
(llama_model_quantize on our f32 export). Timings share the CPU with whatever else runs.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time
from pathlib import Path
from typing import Any

from raft_vs_plain import step

ROOT = Path(__file__).resolve().parents[1]
QUANTS = ("f16", "q8_0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def trained_model(work: Path, held_out: list[int], steps: int) -> Path:
    """The train step's model dir, trained on the guard set less the held-out items."""
    from guardian.core.jsonl import write_jsonl
    from guardian.evaluation.guard import guard_samples
    from guardian.steps import train

    skip = set(held_out)
    rest = [s for i, s in enumerate(guard_samples()) if i not in skip]
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_jsonl(data / "train.jsonl", rest[4:])
    write_jsonl(data / "val.jsonl", rest[:4])
    write_jsonl(data / "test.jsonl", [])
    params = train.Params(max_steps=steps, batch_size=8, val_max_items=4, checkpoint_every=0)
    model, _ = step(train, params, work, "model", dataset=data)
    return model


def one_stream(llm: Any, tok: Any, sample: Any, n: int = 64) -> float:
    """Tokens/s of one greedy stream of n tokens after the prompt (llama.cpp's own loop)."""
    from guardian.export.parity import gguf_tokens, item_texts

    prompt = gguf_tokens(llm, item_texts(tok, sample)[0])
    for i, _ in enumerate(llm.generate(prompt, temp=0.0)):  # end tokens do not stop it
        if i == 0:
            t0 = time.perf_counter()  # the prompt is evaluated
        elif i == n:
            break
    return n / (time.perf_counter() - t0)


def same_as_llama_quantizer(base: Path, source: Path, adapter: Path, ours: Path) -> bool:
    """Whether llama.cpp's quantizer, on our f32 export, writes exactly our q8_0 tensors."""
    import llama_cpp
    import numpy as np
    from gguf import GGUFReader

    from guardian.export.gguf import write_gguf

    f32 = write_gguf(base, source, ours.with_name("f32.gguf"), adapter_dir=adapter, quant="f32")
    theirs = ours.with_name("llama-quantized-q8_0.gguf")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, 2
    if llama_cpp.llama_model_quantize(
        str(f32).encode(), str(theirs).encode(), ctypes.byref(params)
    ):
        return False
    a = {t.name: t for t in GGUFReader(str(ours)).tensors}
    b = {t.name: t for t in GGUFReader(str(theirs)).tensors}
    same = set(a) == set(b) and all(
        a[n].tensor_type == b[n].tensor_type and np.array_equal(a[n].data, b[n].data) for n in a
    )
    f32.unlink()
    theirs.unlink()
    return same


def report(rows: dict[str, dict[str, Any]], torch_side: Any, items: int, new: int) -> None:
    """The per-quant table."""
    print(f"\ntorch (base + adapter, peft): answer NLL {torch_side.eval_seconds:.1f}s, "
          f"greedy {torch_side.gen_seconds:.1f}s for {items} items x {new} new tokens")  # fmt: skip
    print(f"\n{'quant':<6} {'export s':>8} {'MiB':>6} {'ppl torch':>9} {'ppl gguf':>9} "
          f"{'rel diff':>8} {'agree':>6} {'first 4':>7} {'score t/s':>9} {'greedy t/s':>10} "
          f"{'1-stream t/s':>12}")  # fmt: skip
    for quant, r in rows.items():
        print(
            f"{quant:<6} {r['export_s']:>8.1f} {r['mib']:>6.1f} {r['ppl_torch']:>9.4f} "
            f"{r['ppl_gguf']:>9.4f} {r['ppl_rel_diff']:>+8.2%} {r['agreement']:>6.2f} "
            f"{r['agreement_first_4']:>7.2f} {r['score_tps']:>9.0f} {r['greedy_tps']:>10.1f} "
            f"{r['stream_tps']:>12.1f}"
        )
    for quant, r in rows.items():
        print(f"{quant}: token ids differing from the HF tokenizer's on {r['token_mismatches']} "
              f"of {items} items")  # fmt: skip
    if "q8_0" in rows:
        same = rows["q8_0"]["same_as_llama"]
        print(f"q8_0 tensors identical to llama.cpp's own quantizer's: {'yes' if same else 'NO'}")


def main() -> None:
    """Train (or reuse), export per quant, score both sides, print the figures."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--home", type=Path, default=ROOT / "build" / "bench-gguf")
    args = ap.parse_args()
    home = args.home.resolve()
    os.environ["GUARDIAN_HOME"] = str(home)

    import torch
    from peft import PeftModel

    from guardian import log
    from guardian.evaluation.guard import guard_samples
    from guardian.export.gguf import write_gguf
    from guardian.export.parity import compare, gguf_side, load_gguf, torch_side
    from guardian.ml.base_model import base_of, load_model_and_tokenizer
    from guardian.ml.scoring import spread

    log.configure("warning", "json")
    torch.set_num_threads(args.threads)
    every = guard_samples()
    held_out = spread(len(every), args.items)
    samples = [every[i] for i in held_out]
    model_dir = trained_model(home / "work", held_out, args.train_steps)
    ref = base_of(model_dir, home)
    adapter = model_dir / "adapter"
    base, tok = load_model_and_tokenizer(ref.path)
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    print(f"base {ref.spec}  adapter {adapter} ({args.train_steps} train steps)  "
          f"threads {args.threads}  cores {os.cpu_count()}")  # fmt: skip
    print(f"items {len(samples)} held-out guard items, greedy {args.new_tokens} new tokens")
    reference = torch_side(model, tok, samples, args.new_tokens, batch_size=len(samples))
    rows: dict[str, dict[str, Any]] = {}
    for quant in QUANTS:
        out = home / "exports" / f"{quant}.gguf"
        t0 = time.perf_counter()
        write_gguf(ref.path, Path(ref.source), out, adapter_dir=adapter, quant=quant)  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
        llm = load_gguf(out, threads=args.threads)
        got = gguf_side(llm, tok, samples, args.new_tokens)
        rows[quant] = {
            **compare(reference, got, tok, prefixes=(4,)),
            "export_s": seconds,
            "mib": out.stat().st_size / 2**20,
            "score_tps": got.eval_tokens / got.eval_seconds,
            "greedy_tps": got.gen_tokens / got.gen_seconds,
            "stream_tps": one_stream(llm, tok, samples[0]),
        }
        del llm
    rows["q8_0"]["same_as_llama"] = same_as_llama_quantizer(
        ref.path, Path(ref.source), adapter, home / "exports" / "q8_0.gguf"
    )
    report(rows, reference, len(samples), args.new_tokens)


if __name__ == "__main__":
    main()
