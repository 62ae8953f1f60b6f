"""Running the answer-quality evaluation on loaded models, closed-book and open-book.

The questions people ask — explain, how-to, where, usage, write the code — built from the
repo's own facts (guardian/data/asks.py) and scored by what the repo states
(guardian/evaluation/answers.py): the right symbol named, the docstring's content carried,
prose rather than a bare quote and a token, no invented identifiers, code that parses with
the right signature and, where the repo has tests for it, passes them. Beside the knowledge
probe, so a model that learns facts by giving up its voice is caught.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import AskItem, Chunk, Sample
from guardian.data.asks import KINDS, build_asks
from guardian.data.context import ContextIndex
from guardian.evaluation.answers import AskScore, answers_summary, score_ask
from guardian.evaluation.execution import passes_tests
from guardian.evaluation.hallucination import RepoNames
from guardian.evaluation.stats import PairedItems
from guardian.ml.scoring import generate_with_cuts
from guardian.steps.probing import MODES, prompt_text, synthesis_settings

if TYPE_CHECKING:
    from guardian.steps.roles import Role

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AskSettings:
    """How the answer-quality evaluation runs: questions per kind, documents per open-book
    question, answer budget, quote grounding, and whether code answers run the repo's tests."""

    per_kind: int
    k: int
    max_new_tokens: int
    batch_size: int
    seed: int
    grounded: bool = True
    run_tests: bool = True
    test_timeout: float = 60.0


@dataclass(frozen=True)
class _Where:
    """The repo at the evaluated commit, for running its tests against generated code."""

    repo: Path
    commit: str


def run_asks(
    roles: Sequence[Role],
    dataset: Path,
    chunks: list[Chunk],
    names: RepoNames,
    settings: AskSettings,
    repo: Path | None = None,
    commit: str = "",
) -> dict[str, Any] | None:
    """Ask every role the answer-quality questions in both modes; None when the repo gives
    none. Returns the summary per role and mode, per-item records and paired marks."""
    seen = {str(s.metadata.get("path")) for s in read_jsonl(dataset / "train.jsonl", Sample)}
    items = build_asks(chunks, seen, seed=settings.seed, per_kind=settings.per_kind)
    if not items:
        return None
    index = ContextIndex.for_synthesis(chunks, synthesis_settings(dataset))
    prompts = {
        "closed": [Sample(input=item.question, output="") for item in items],
        "open": [index.prompt(item.question, k=settings.k)[0] for item in items],
    }
    where = _Where(repo, commit) if repo is not None and commit and settings.run_tests else None
    runs: dict[str, dict[str, tuple[list[str], list[AskScore]]]] = {}
    for role in roles:
        runs[role.name] = {}
        for mode in MODES:
            with role.activate():
                answers, _ = generate_with_cuts(
                    role.model,
                    role.tok,
                    prompts[mode],
                    settings.max_new_tokens,
                    settings.batch_size,
                    grounded=settings.grounded and mode == "open",
                )
            scores = [
                _score(item, answer, prompt_text(prompt), names, where, settings)
                for item, answer, prompt in zip(items, answers, prompts[mode], strict=True)
            ]
            runs[role.name][mode] = (answers, scores)
        log.info("evaluate answers", role=role.name, n=len(items))
    summary = {
        role: {mode: answers_summary(items, scores) for mode, (_, scores) in run.items()}
        for role, run in runs.items()
    }
    return {
        "summary": summary,
        "items": list(_records(items, runs)),
        "paired": _paired(items, runs),
    }


def _score(
    item: AskItem,
    answer: str,
    prompt: str,
    names: RepoNames,
    where: _Where | None,
    settings: AskSettings,
) -> AskScore:
    """One answer's marks; a code answer is also run against the repo's tests for it."""
    passed = None
    if where is not None and item.kind == "code" and item.tests:
        passed = passes_tests(where.repo, where.commit, item, answer, timeout=settings.test_timeout)
    return score_ask(item, answer, prompt, names, passed)


def answer_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The answer-quality figures a gate can use, flat, for one role: per mode the overall
    score, each kind's score, the collapse share and invented identifiers per answer."""
    out: dict[str, Any] = {}
    for mode in MODES:
        row = summary.get(mode) or {}
        out[f"answers_{mode}"] = row.get("score")
        out[f"collapse_{mode}"] = row.get("collapse")
        out[f"invented_{mode}"] = row.get("invented_per_answer")
        for kind in KINDS:
            out[f"answers_{mode}_{kind}"] = (row.get("by_kind") or {}).get(kind, {}).get("score")
    return out


def _paired(
    items: list[AskItem], runs: dict[str, dict[str, tuple[list[str], list[AskScore]]]]
) -> dict[str, PairedItems]:
    """Per-item marks of both roles on the same items, for the intervals of each figure."""
    paired: dict[str, PairedItems] = {}
    for mode in MODES:
        chal, base = runs["challenger"][mode][1], runs["baseline"][mode][1]
        paired[f"answers_{mode}"] = PairedItems([s.score for s in chal], [s.score for s in base])
        paired[f"invented_{mode}"] = PairedItems(
            [float(s.invented) for s in chal], [float(s.invented) for s in base]
        )
        voiced = [i for i, item in enumerate(items) if item.kind in ("explain", "howto", "code")]
        paired[f"collapse_{mode}"] = PairedItems(
            [float(chal[i].collapsed) for i in voiced], [float(base[i].collapsed) for i in voiced]
        )
        for kind in KINDS:
            picked = [i for i, item in enumerate(items) if item.kind == kind]
            if picked:
                paired[f"answers_{mode}_{kind}"] = PairedItems(
                    [chal[i].score for i in picked], [base[i].score for i in picked]
                )
    return paired


def _records(
    items: list[AskItem], runs: dict[str, dict[str, tuple[list[str], list[AskScore]]]]
) -> Iterator[dict[str, Any]]:
    for i, item in enumerate(items):
        row: dict[str, Any] = {
            "id": item.id,
            "kind": item.kind,
            "question": item.question,
            "symbol": item.qualname,
            "path": item.path,
            "seen": item.seen,
        }
        for role, run in runs.items():
            for mode, (answers, scores) in run.items():
                row[f"{role}_{mode}_answer"] = answers[i]
                row[f"{role}_{mode}_score"] = scores[i].model_dump()
        yield row
