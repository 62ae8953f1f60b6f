"""Synthesis + validation throughput on the whole CPython standard library.

Usage: python benchmarks/synthesis_stdlib.py [--work DIR] [--stdlib DIR] [--plain]

Copies every `.py` file of the running interpreter's stdlib (site-packages excluded) into a git
repo under --work, mines it once (cached there), then times the synthesize step (RAFT, default
params) and the validate step, each in a fresh child process so its peak memory is its own.
Prints chunks, samples, seconds, samples/s and peak RSS per phase.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sysconfig
import time
from pathlib import Path
from typing import Any

from _common import commit_tree

ROOT = Path(__file__).resolve().parents[1]


def make_repo(stdlib: Path, repo: Path) -> None:
    """Copy the stdlib's .py files (no site-packages) into a fresh git repo with one commit."""
    for src in sorted(stdlib.rglob("*.py")):
        rel = src.relative_to(stdlib)
        if rel.parts[0] in ("site-packages", "dist-packages") or "__pycache__" in rel.parts:
            continue
        dest = repo / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    commit_tree(repo, "stdlib")


def _out(work: Path, name: str) -> Path:
    return work / {"mine": "chunks", "validate": "validated"}.get(name, name)


def _phase(name: str, work: Path, raw: dict[str, Any], queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from guardian import log
    from guardian.steps import mine, synthesize, validate
    from guardian.steps.base import StepContext

    log.configure("warning", "json")
    out = _out(work, name)
    t0 = time.perf_counter()
    if name == "mine":
        result = mine.run(StepContext(repo=work / "repo", out_dir=out, home=work), mine.Params())
    elif name.startswith("synthesize"):
        ctx = StepContext(repo=work, out_dir=out, home=work, inputs={"chunks": work / "chunks"})
        result = synthesize.run(ctx, synthesize.Params.model_validate(raw))
    else:
        ctx = StepContext(repo=work, out_dir=out, home=work, inputs={"dataset": work / raw["src"]})
        result = validate.run(ctx, validate.Params())
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"seconds": seconds, "peak_mb": peak_mb, "metrics": result.metrics})


def run_phase(name: str, work: Path, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one phase in a forked child; returns its seconds, peak RSS and step metrics."""
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    shutil.rmtree(_out(work, name), ignore_errors=True)
    proc = ctx.Process(target=_phase, args=(name, work, raw or {}, queue))
    proc.start()
    report: dict[str, Any] = queue.get()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"{name} failed with exit code {proc.exitcode}")
    return report


def main() -> None:
    """Mine the stdlib once, then time synthesis and validation and print a table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-stdlib")
    ap.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    ap.add_argument("--plain", action="store_true", help="also time plain (non-RAFT) synthesis")
    args = ap.parse_args()
    os.environ.setdefault("GUARDIAN_HOME", str(args.work / "home"))
    work: Path = args.work
    if not (work / "chunks" / "chunks.jsonl").is_file():
        shutil.rmtree(work, ignore_errors=True)
        make_repo(args.stdlib, work / "repo")
        mined = run_phase("mine", work)
        print(f"mined {mined['metrics']['chunks']} chunks in {mined['seconds']:.1f} s")
    lines = sum(1 for _ in (work / "chunks" / "chunks.jsonl").open("rb"))
    print(f"stdlib: {args.stdlib}\nchunks: {lines}\ncores: {os.cpu_count()}\n")
    print(f"{'phase':<22} {'samples':>9} {'seconds':>9} {'samples/s':>10} {'peak MB':>9}")
    rows: list[tuple[str, dict[str, Any], int]] = []
    synth = run_phase("synthesize", work, {})
    rows.append(("synthesize (raft)", synth, int(synth["metrics"]["samples"])))
    if args.plain:
        plain = run_phase("synthesize-plain", work, {"raft": False})
        rows.append(("synthesize (plain)", plain, int(plain["metrics"]["samples"])))
    checked = run_phase("validate", work, {"src": "synthesize"})
    rows.append(("validate (raft)", checked, int(synth["metrics"]["samples"])))
    for label, rep, n in rows:
        rate = n / rep["seconds"]
        print(f"{label:<22} {n:>9} {rep['seconds']:>9.1f} {rate:>10.0f} {rep['peak_mb']:>9.0f}")
    total = synth["seconds"] + checked["seconds"]
    n = int(synth["metrics"]["samples"])
    print(f"{'synthesize + validate':<22} {n:>9} {total:>9.1f} {n / total:>10.0f}")
    card = json.loads((work / "validated" / "card.json").read_text())
    print(
        f"\nkept {sum(card['kept'].values())} samples; dropped "
        + ", ".join(f"{k}={v}" for k, v in card["dropped"].items() if v)
        + f"; oracle fraction {card['oracle']['all']['fraction']}; "
        + f"ungrounded quotes {card['quotes']['ungrounded']}/{card['quotes']['checked']}"
    )


if __name__ == "__main__":
    main()
