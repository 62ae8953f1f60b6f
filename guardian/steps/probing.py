"""Running the knowledge probe on a loaded model, closed-book and open-book.

Shared by the evaluate step (challenger and baseline on the same items) and the knowledge
benchmark. Closed-book asks the bare question, as `ollama run` users do; open-book puts the
top-k retrieved documents in front of it in the RAFT format, as `guardian ask` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Chunk, ProbeItem, Sample
from guardian.data.context import ContextIndex
from guardian.data.probe import build_probe
from guardian.evaluation.hallucination import RepoNames, hallucination
from guardian.evaluation.probe import probe_summary, score_answer
from guardian.evaluation.stats import PairedItems
from guardian.ml.scoring import generate_with_cuts

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from guardian.steps.roles import Role

log = structlog.get_logger(__name__)

MODES = ("closed", "open")


@dataclass(frozen=True)
class ProbePrompts:
    """The prompts of one probe: per mode, one sample per item; and open-book recall."""

    samples: dict[str, list[Sample]]
    recall: list[bool]


def probe_prompts(items: Sequence[ProbeItem], index: ContextIndex, *, k: int) -> ProbePrompts:
    """Closed- and open-book prompts for every item, and whether retrieval found its answer."""
    closed = [Sample(input=item.question, output="") for item in items]
    opened: list[Sample] = []
    recall: list[bool] = []
    for item in items:
        sample, ids = index.prompt(item.question, k=k)
        opened.append(sample)
        recall.append(bool(set(ids) & set(item.doc_ids)))
    return ProbePrompts({"closed": closed, "open": opened}, recall)


def answer_probe(
    model: Any,
    tok: PreTrainedTokenizerBase,
    items: Sequence[ProbeItem],
    prompts: ProbePrompts,
    *,
    max_new_tokens: int,
    batch_size: int,
    grounded: bool = False,
) -> dict[str, dict[str, list[Any]]]:
    """Greedy answers, their marks, and whether each ran out of tokens, per mode:
    {mode: {"answers": [...], "correct": [...], "cut": [...]}}. `grounded` keeps open-book
    quotes verbatim from the retrieved documents (ml/grounding.py), as `guardian ask` does."""
    out: dict[str, dict[str, list[Any]]] = {}
    for mode in MODES:
        answers, cuts = generate_with_cuts(
            model,
            tok,
            prompts.samples[mode],
            max_new_tokens,
            batch_size,
            grounded=grounded and mode == "open",
        )
        marks = [score_answer(item, a) for item, a in zip(items, answers, strict=True)]
        out[mode] = {"answers": answers, "correct": marks, "cut": cuts}
    return out


@dataclass(frozen=True)
class ProbeSettings:
    """How an evaluation probes: questions per kind, documents per question, answer budget,
    and whether open-book quotes are held to the documents."""

    per_kind: int
    k: int
    max_new_tokens: int
    batch_size: int
    seed: int
    grounded: bool = True


def prompt_text(sample: Sample) -> str:
    """What the model was shown for a sample: the text a quote must come from."""
    return f"{sample.instruction or ''}\n{sample.input}"


def run_probe(
    roles: Sequence[Role],
    dataset: Path,
    chunks: list[Chunk],
    names: RepoNames,
    settings: ProbeSettings,
) -> dict[str, Any]:
    """Ask every role the probe's questions. Returns the summary per role, the per-item
    records, the paired per-item marks (for intervals) and each role's hallucinations."""
    seen = {str(s.metadata.get("path")) for s in read_jsonl(dataset / "train.jsonl", Sample)}
    items = build_probe(chunks, seen, seed=settings.seed, per_kind=settings.per_kind)
    index = ContextIndex.for_synthesis(chunks, synthesis_settings(dataset))
    prompts = probe_prompts(items, index, k=settings.k)
    runs: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for role in roles:
        with role.activate():
            runs[role.name] = answer_probe(
                role.model,
                role.tok,
                items,
                prompts,
                max_new_tokens=settings.max_new_tokens,
                batch_size=settings.batch_size,
                grounded=settings.grounded,
            )
        for mode, got in runs[role.name].items():
            got["hallucination"] = [
                hallucination(a, prompt_text(p), names)
                for a, p in zip(got["answers"], prompts.samples[mode], strict=True)
            ]
        log.info("evaluate probe", role=role.name, n=len(items))
    summary = {
        role: probe_summary(
            items,
            {m: r["correct"] for m, r in run.items()},
            prompts.recall,
            {m: r["cut"] for m, r in run.items()},
        )
        for role, run in runs.items()
    }
    return {
        "summary": summary,
        "items": list(_records(items, prompts.recall, runs)),
        "paired": _paired(items, runs),
        "hallucinations": {
            r: [x for got in run.values() for x in got["hallucination"]] for r, run in runs.items()
        },
    }


def probe_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The probe figures a gate can use, flat: open/closed accuracy, seen/unseen splits."""
    out: dict[str, Any] = {}
    for mode in MODES:
        row = summary.get(mode, {})
        out[f"probe_{mode}"] = row.get("accuracy")
        out[f"probe_{mode}_seen"] = row.get("seen")
        out[f"probe_{mode}_unseen"] = row.get("unseen")
    return out


def _paired(
    items: list[ProbeItem], runs: dict[str, dict[str, dict[str, list[Any]]]]
) -> dict[str, PairedItems]:
    paired: dict[str, PairedItems] = {}
    for mode in MODES:
        for part, keep in (("", None), ("_seen", True), ("_unseen", False)):
            picked = [i for i, item in enumerate(items) if keep is None or item.seen is keep]
            marks = {r: [float(runs[r][mode]["correct"][i]) for i in picked] for r in runs}
            paired[f"probe_{mode}{part}"] = PairedItems(marks["challenger"], marks["baseline"])
    return paired


def _records(
    items: list[ProbeItem], recall: list[bool], runs: dict[str, dict[str, dict[str, list[Any]]]]
) -> Iterator[dict[str, Any]]:
    for i, item in enumerate(items):
        row: dict[str, Any] = {
            "id": item.id,
            "kind": item.kind,
            "question": item.question,
            "expected": item.expected,
            "seen": item.seen,
            "retrieved": recall[i],
        }
        for role, run in runs.items():
            for mode, got in run.items():
                for field in ("answer", "correct", "cut", "hallucination"):
                    key = "answers" if field == "answer" else field
                    row[f"{role}_{mode}_{field}"] = got[key][i]
        yield row


def synthesis_settings(dataset: Path) -> dict[str, Any]:
    """The synthesis settings recorded in the dataset card (context sizes, instruction)."""
    try:
        card = json.loads((dataset / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    info = card.get("synthesis", {}) if isinstance(card, dict) else {}
    return info if isinstance(info, dict) else {}
