"""Synthesize step: render prompt templates over mined chunks into a split Q&A dataset.

Reads `chunks.jsonl` from the `chunks` artifact and writes `train.jsonl`, `val.jsonl`,
`test.jsonl` and `card.json`. Test samples are split by file, so no test file contributes to
training; val is a share of the train files' wordings (`val_fraction`), so every non-test file
is trained on and the val loss measures recall under untrained wordings. The output is
byte-identical for identical inputs and params (in any input order).

With `raft: true` each sample is a RAFT sample (see guardian/data/raft.py): the question comes with
the oracle document (for a fraction `oracle_fraction` of samples) plus its nearest BM25
neighbours as distractors, and the answer quotes the oracle. The chunks file is streamed
twice: once to index where each file's chunks are, then one retrieval pool at a time, so
memory is bounded by the largest pool, not the repository.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field, model_validator

import guardian
from guardian.core.faults import fault_point
from guardian.core.jsonl import write_json
from guardian.data.card import SPLITS, SplitWriter
from guardian.data.raft import DEFAULT_INSTRUCTION, plan_pools
from guardian.data.split import split_files
from guardian.data.teacher import Teacher, TeacherParams
from guardian.data.templates import Template, load_templates
from guardian.errors import ConfigError, DataError
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

log = structlog.get_logger(__name__)


class Params(StepParams):
    """Synthesis settings.

    `templates_dir` may be absolute; a relative one resolves against the current working
    directory when it exists there (the project root holding skills.yaml), otherwise against
    the repo root of the installed `guardian` package, which ships `prompts/`. RAFT knobs:
    `distractors` (k), `oracle_fraction` (P), `max_context_chars` (distractors are dropped,
    farthest first, until the documents fit), retrieval pools of `min_pool`..`max_pool` chunks.
    """

    templates_dir: str = "prompts"
    question_types: list[str] | None = None
    val_fraction: float = Field(
        default=0.1, ge=0.0, le=0.9, description="share of train-file wordings held out for val"
    )
    test_fraction: float = Field(default=0.2, ge=0.0, le=0.9)
    seed: int = 0
    max_code_lines: int = Field(default=60, ge=1)
    min_docstring_chars: int = Field(default=10, ge=0)
    raft: bool = True
    distractors: int = Field(default=3, ge=0, le=20)
    oracle_fraction: float = Field(default=0.8, ge=0.0, le=1.0)
    max_context_chars: int = Field(default=2400, ge=100)
    max_summary_chars: int = Field(default=240, ge=0, description="0: no summary in documents")
    max_members: int = Field(default=12, ge=1)
    max_repeat: int | None = Field(
        default=None, ge=1, description="cap on each template's `repeat` (wordings per unit)"
    )
    closed_book: bool = Field(
        default=True, description="with RAFT, also emit closed_book templates' plain copies"
    )
    closed_book_wordings: int | None = Field(
        default=None, ge=1, description="plain copies per unit (None: one per wording)"
    )
    min_pool: int = Field(default=64, ge=1)
    max_pool: int = Field(default=4000, ge=2)
    instruction: str = Field(default=DEFAULT_INSTRUCTION, min_length=1)
    teacher: TeacherParams | None = None

    @model_validator(mode="after")
    def _fractions_leave_train(self) -> Params:
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must be below 1")
        return self


def resolve_templates_dir(templates_dir: str) -> Path:
    """Find the templates dir: absolute, else under the cwd, else beside the guardian package."""
    path = Path(templates_dir).expanduser()
    if path.is_absolute():
        return path
    if (Path.cwd() / path).is_dir():
        return path
    packaged = Path(guardian.__file__).resolve().parents[1] / path
    if packaged.is_dir():
        return packaged
    raise ConfigError(f"templates_dir '{templates_dir}': not found in {Path.cwd()} or {packaged}")


def select_templates(templates: list[Template], wanted: list[str] | None) -> list[Template]:
    """Keep the templates named in `wanted` (all when None); an unknown name is a ConfigError."""
    if wanted is None:
        return templates
    known = {t.question_type for t in templates}
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise ConfigError(
            f"question_types: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return [t for t in templates if t.question_type in set(wanted)]


def _template_digest(templates: list[Template]) -> dict[str, str]:
    return {
        t.question_type: hashlib.sha256(
            json.dumps(t.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()[:16]
        for t in templates
    }


def _per_unit(counts: list[int]) -> dict[str, Any]:
    if not counts:
        return {"units": 0}
    return {
        "units": len(counts),
        "mean": round(sum(counts) / len(counts), 2),
        "min": min(counts),
        "at_least_5": round(sum(1 for c in counts if c >= 5) / len(counts), 4),
    }


def run(ctx: StepContext, params: Params) -> StepResult:
    """Render every selected template over every chunk and write the split dataset."""
    # numpy-backed retrieval: keep the step registry light
    from guardian.data.chunkfile import load_chunks, scan_chunks
    from guardian.data.synth import PoolSynth

    chunks_path = ctx.input_file("chunks", "chunks.jsonl")
    where = scan_chunks(chunks_path)
    n_chunks = sum(len(v) for v in where.values())
    if not n_chunks:
        raise DataError(f"{chunks_path}: no chunks to synthesize from")
    templates = select_templates(
        load_templates(resolve_templates_dir(params.templates_dir)), params.question_types
    )
    assignment = split_files(list(where), 0.0, params.test_fraction, params.seed)
    if len(assignment) < 3:
        log.warning("synthesize.too_few_files", files=len(assignment), split="no test files")
    pools = plan_pools({p: len(v) for p, v in where.items()}, params.min_pool, params.max_pool)
    members: dict[str, list[str]] = defaultdict(list)
    for path, key in pools.items():
        members[key].append(path)

    teacher = Teacher(params.teacher) if params.teacher is not None else None
    synth = PoolSynth(templates, params, assignment, teacher)
    with SplitWriter(ctx.out_dir) as out:
        for key in sorted(members):
            spots = [s for path in members[key] for s in where[path]]
            for sample in synth.samples(load_chunks(chunks_path, spots)):
                out.write(sample.metadata["split"], sample)
            fault_point("during", "synthesize")
        counts = {s: out.counts[s] for s in SPLITS}
        if not sum(counts.values()):
            raise DataError(
                f"{chunks_path}: no samples rendered from {n_chunks} chunks "
                f"(check question_types, min_docstring_chars, max_code_lines)"
            )

    files = {s: sorted(p for p, x in assignment.items() if x == s) for s in SPLITS}
    stats: Counter[str] = synth.stats
    card: dict[str, Any] = {
        "chunks": n_chunks,
        "samples": counts,
        "question_types": {
            t.question_type: {s: synth.by_type[s][t.question_type] for s in SPLITS}
            for t in templates
        },
        "file_counts": {s: len(files[s]) for s in SPLITS},
        "files": files,
        "pools": len(members),
        "questions_per_documented_unit": _per_unit(synth.per_documented),
        "public_units": {
            "units": synth.coverage["public_units"],
            "with_samples": synth.coverage["covered"],
        },
        "skipped": dict(sorted(stats.items())),
        "templates": _template_digest(templates),
        "params": params.model_dump(mode="json"),
    }
    if synth.teacher_types:
        card["question_types"]["teacher"] = {s: synth.by_type[s]["teacher"] for s in SPLITS}
    if params.raft:
        card["raft"] = synth.raft_summary()
    if teacher is not None:
        card["teacher"] = {"calls": teacher.calls, **synth.teacher_stats}
    write_json(ctx.out_dir / "card.json", card)
    log.info("synthesize.done", chunks=n_chunks, pools=len(members), raft=params.raft, **counts)
    metrics: dict[str, Any] = {"chunks": n_chunks, "samples": sum(counts.values()), **counts}
    if params.raft:
        metrics["oracle_fraction"] = card["raft"]["oracle_fraction"]
    return StepResult(outputs=[f"{s}.jsonl" for s in SPLITS] + ["card.json"], metrics=metrics)


def templates_digest(params: Params, home: Path) -> str:
    """Digest of the templates dir's contents, so editing a prompt invalidates the cache."""
    from guardian.store.artifacts import dir_digest

    return dir_digest(resolve_templates_dir(params.templates_dir))


SPEC = StepSpec(
    name="synthesize",
    fn=run,
    params=Params,
    needs=("chunks",),
    provides="dataset",
    version="4",
    extra_key=templates_digest,
)
