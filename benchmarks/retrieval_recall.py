"""Does open-book retrieval put the answering document in front of the model? Probe recall.

    python benchmarks/retrieval_recall.py [--package DIR ...] [--k 3] [--per-kind 0]

Mines the demo project and each `--package DIR` (an installed package's folder, copied into
a temp dir as `src/<name>` and mined as a plain directory), builds the knowledge probe's
questions over it (`--per-kind 0`: every question), and asks the product's ContextIndex for
each: a hit when the ids `prompt(question, k)` carries include one of the item's `doc_ids`.
Prints recall@1 and recall@k per question kind, ours beside BM25 — the same index and
documents with the identifier step switched off (the path rule, then BM25: the query path
before the name index). No model is needed. A footnote counts the questions asked in the
same words about more than k units (overloads sharing one name), which k documents cannot
all answer.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence, Set
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardian.core.jsonl import read_jsonl  # noqa: E402
from guardian.core.schema import Chunk, ProbeItem  # noqa: E402
from guardian.data.context import ContextIndex  # noqa: E402
from guardian.data.facts import callers_of  # noqa: E402
from guardian.data.probe import KINDS, build_probe  # noqa: E402


class PlainBM25(ContextIndex):
    """The ContextIndex without its identifier step: named paths' outlines, then BM25."""

    def _definitions(self, question: str, scores: np.ndarray, paths: Set[str], k: int) -> list[int]:
        return []


def mine_dir(src: Path, work: Path) -> list[Chunk]:
    """Every chunk of a plain directory, mined by the product's own step."""
    from guardian.steps import mine
    from guardian.steps.base import StepContext

    out = work / "chunks"
    out.mkdir(parents=True)
    ctx = StepContext(repo=src, out_dir=out, home=work / "home", repo_name=src.name)
    mine.run(ctx, mine.Params(allow_plain_dir=True, workers=1))
    return list(read_jsonl(out / "chunks.jsonl", Chunk))


def recall(
    index: ContextIndex, items: Sequence[ProbeItem], k: int
) -> tuple[dict[str, list[int]], float]:
    """Per kind: [questions, hits@1, hits@k]; and the mean seconds per question."""
    counts: dict[str, list[int]] = {kind: [0, 0, 0] for kind in KINDS}
    t0 = time.perf_counter()
    for item in items:
        ids = index.prompt(item.question, k=k)[1]
        row = counts[item.kind]
        row[0] += 1
        row[1] += bool(set(ids[:1]) & set(item.doc_ids))
        row[2] += bool(set(ids) & set(item.doc_ids))
    return counts, (time.perf_counter() - t0) / max(1, len(items))


def report(name: str, chunks: list[Chunk], k: int, per_kind: int) -> None:
    """Print one repo's recall table, ours beside BM25."""
    items = build_probe(chunks, set(), seed=0, per_kind=per_kind)
    t0 = time.perf_counter()
    ours = ContextIndex(chunks)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    callers_of(chunks)
    callers = time.perf_counter() - t0
    got = {"bm25": recall(PlainBM25(chunks), items, k), "ours": recall(ours, items, k)}
    print(f"\n{name}: {len(chunks)} chunks, {len(items)} questions, index built in "
          f"{build * 1000:.0f} ms ({callers * 1000:.0f} ms of that is callers_of), per question: "
          + ", ".join(f"{role} {got[role][1] * 1000:.2f} ms" for role in got))  # fmt: skip
    heads = [f"{role}@{at}" for role in got for at in (1, k)]
    print(f"{'kind':<10}{'n':>6}" + "".join(f"{h:>9}" for h in heads))
    for kind in [*KINDS, "ALL"]:
        cells: list[str] = []
        for role in got:
            rows = got[role][0]
            n, at1, atk = (
                [sum(r[i] for r in rows.values()) for i in range(3)] if kind == "ALL"
                else rows[kind]
            )  # fmt: skip
            cells += [f"{at1 / n:.2f}" if n else "-", f"{atk / n:.2f}" if n else "-"]
        total = len(items) if kind == "ALL" else got["ours"][0][kind][0]
        print(f"{kind:<10}{total:>6}" + "".join(f"{c:>9}" for c in cells))
    asked = Counter((i.kind, i.question) for i in items)
    shared = Counter(kind for (kind, _q), n in asked.items() if n > k for _ in range(n))
    if shared:
        print(f"asked in the same words about more than {k} units: "
              + ", ".join(f"{kind} {n}" for kind, n in sorted(shared.items())))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, action="append", default=[])
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--per-kind", type=int, default=0, help="questions per kind; 0 = all")
    args = parser.parse_args()

    from guardian import log

    log.configure("warning", "auto")
    with tempfile.TemporaryDirectory(prefix="retrieval-recall-") as tmp:
        work = Path(tmp)
        demo = ROOT / "examples" / "demo-project"
        report("demo-project", mine_dir(demo, work / "demo"), args.k, args.per_kind)
        for package in args.package:
            src = work / package.name / "repo"
            shutil.copytree(
                package, src / "src" / package.name, ignore=shutil.ignore_patterns("__pycache__")
            )
            chunks = mine_dir(src, work / package.name)
            report(package.name, chunks, args.k, args.per_kind)


if __name__ == "__main__":
    main()
