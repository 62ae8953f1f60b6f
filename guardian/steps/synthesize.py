"""Synthesize step: render prompt templates over mined chunks into a split Q&A dataset.

Reads `chunks.jsonl` from the `chunks` artifact and writes `train.jsonl`, `val.jsonl`,
`test.jsonl` and `card.json`. Samples are split by file, so no file contributes to two
splits, and the output is byte-identical for identical inputs and params.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field, model_validator

import guardian
from guardian.errors import ConfigError, DataError
from guardian.records import Chunk, Sample, read_jsonl, write_json, write_jsonl
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec
from guardian.templates import Template, load_templates, render

log = structlog.get_logger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")


class Params(StepParams):
    """Synthesis settings.

    `templates_dir` may be absolute; a relative one resolves against the current working
    directory when it exists there (the project root holding skills.yaml), otherwise against
    the repo root of the installed `guardian` package, which ships `prompts/`.
    """

    templates_dir: str = "prompts"
    question_types: list[str] | None = None
    val_fraction: float = Field(default=0.1, ge=0.0, le=0.9)
    test_fraction: float = Field(default=0.2, ge=0.0, le=0.9)
    seed: int = 0
    max_code_lines: int = Field(default=60, ge=1)
    min_docstring_chars: int = Field(default=10, ge=0)

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


def split_files(
    paths: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Assign each file to a split by a seeded sha256 order; every non-zero split gets a file.

    With fewer than three files everything goes to train.
    """
    files = sorted(set(paths), key=lambda p: (hashlib.sha256(f"{seed}:{p}".encode()).digest(), p))
    n = len(files)
    if n < 3:
        return dict.fromkeys(files, "train")
    n_test = max(round(n * test_fraction), 1 if test_fraction > 0 else 0)
    n_val = max(round(n * val_fraction), 1 if val_fraction > 0 else 0)
    while n_test + n_val > n - 1:
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    assignment: dict[str, str] = {}
    for i, path in enumerate(files):
        assignment[path] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return assignment


def _template_digest(templates: list[Template]) -> dict[str, str]:
    return {
        t.question_type: hashlib.sha256(
            json.dumps(t.model_dump(mode="json"), sort_keys=True).encode()
        ).hexdigest()[:16]
        for t in templates
    }


def _card(
    samples: dict[str, list[Sample]],
    assignment: dict[str, str],
    n_chunks: int,
    templates: list[Template],
    params: Params,
) -> dict[str, Any]:
    by_type: dict[str, dict[str, int]] = {
        t.question_type: dict.fromkeys(SPLITS, 0) for t in templates
    }
    for split, items in samples.items():
        for s in items:
            by_type[s.metadata["question_type"]][split] += 1
    files = {split: sorted(p for p, s in assignment.items() if s == split) for split in SPLITS}
    return {
        "chunks": n_chunks,
        "samples": {split: len(samples[split]) for split in SPLITS},
        "question_types": by_type,
        "file_counts": {split: len(files[split]) for split in SPLITS},
        "files": files,
        "templates": _template_digest(templates),
        "params": params.model_dump(mode="json"),
    }


def run(ctx: StepContext, params: Params) -> StepResult:
    """Render every selected template over every chunk and write the split dataset."""
    chunks_path = ctx.input("chunks") / "chunks.jsonl"
    chunks = sorted(
        read_jsonl(chunks_path, Chunk), key=lambda c: (c.path, c.start_line, c.qualname, c.id)
    )
    if not chunks:
        raise DataError(f"{chunks_path}: no chunks to synthesize from")
    templates = select_templates(
        load_templates(resolve_templates_dir(params.templates_dir)), params.question_types
    )

    rendered: list[Sample] = []
    for chunk in chunks:
        for tpl in templates:
            sample = render(
                tpl,
                chunk,
                max_code_lines=params.max_code_lines,
                min_docstring_chars=params.min_docstring_chars,
            )
            if sample is not None:
                rendered.append(sample)
    if not rendered:
        raise DataError(
            f"{chunks_path}: no samples rendered from {len(chunks)} chunks "
            f"(check question_types, min_docstring_chars, max_code_lines)"
        )

    assignment = split_files(
        [s.metadata["path"] for s in rendered],
        params.val_fraction,
        params.test_fraction,
        params.seed,
    )
    if len(assignment) < 3:
        log.warning("synthesize.too_few_files", files=len(assignment), split="train only")
    samples: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for sample in rendered:
        split = assignment[sample.metadata["path"]]
        sample.metadata["split"] = split
        samples[split].append(sample)

    for split in SPLITS:
        write_jsonl(ctx.out_dir / f"{split}.jsonl", samples[split])
    card = _card(samples, assignment, len(chunks), templates, params)
    write_json(ctx.out_dir / "card.json", card)
    counts = card["samples"]
    log.info("synthesize.done", chunks=len(chunks), **counts)
    return StepResult(
        outputs=[f"{split}.jsonl" for split in SPLITS] + ["card.json"],
        metrics={"chunks": len(chunks), "samples": len(rendered), **counts},
    )


def templates_digest(params: Params, home: Path) -> str:
    """Digest of the templates dir's contents, so editing a prompt invalidates the cache."""
    from guardian.artifacts import dir_digest

    return dir_digest(resolve_templates_dir(params.templates_dir))


SPEC = StepSpec(
    name="synthesize",
    fn=run,
    params=Params,
    needs=("chunks",),
    provides="dataset",
    extra_key=templates_digest,
)
