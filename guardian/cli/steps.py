"""Each pipeline step run by hand: mine, validate-data, synthesize, train, evaluate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from guardian.cli.app import ConfigOpt, app, err, handled, out, setup
from guardian.core.fsutil import atomic_copy
from guardian.errors import DataError


def _standalone(step: str, params: Any, inputs: dict[str, Path], repo: Path | None) -> Path:
    """Run one step outside the pipeline into a temp dir; the caller moves what it needs."""
    import tempfile

    from guardian.config.settings import load_config
    from guardian.steps import StepContext, get_step

    spec = get_step(step)
    home = load_config(None).home
    home.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"guardian-{step}-"))
    ctx = StepContext(
        repo=(repo or Path.cwd()).resolve(),
        out_dir=tmp,
        home=home,
        repo_name=(repo or Path.cwd()).resolve().name,
        inputs=inputs,
    )
    try:
        result = spec.fn(ctx, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for key, value in result.metrics.items():
        err.print(f"  {key}: {value}", highlight=False)
    return tmp


@app.command()
@handled
def mine(
    repo: Path,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="chunks JSONL to write")],
    language: Annotated[list[str] | None, typer.Option(help="languages to mine")] = None,
    since: Annotated[
        str | None, typer.Option(help="re-parse files changed since this git revision")
    ] = None,
    stats: Annotated[
        bool, typer.Option("--stats", help="print counts per language, kind, skip reason")
    ] = False,
) -> None:
    """Mine functions, methods and classes from the files git tracks at HEAD (or a plain dir)."""
    from guardian.steps.mine import Params, format_stats

    setup(None)
    raw: dict[str, Any] = {"allow_plain_dir": True}
    if language:
        raw["languages"] = language
    if since:
        raw["since"] = since
    params = Params.model_validate(raw)
    tmp = _standalone("mine", params, {}, repo)
    try:
        atomic_copy(tmp / "chunks.jsonl", out_file)
        if stats:
            stats_text = format_stats(json.loads((tmp / "stats.json").read_text()))
            out.print(stats_text, highlight=False, markup=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out.print(f"wrote {out_file}", highlight=False)


@app.command("validate-data")
@handled
def validate_data_cmd(
    data: Annotated[Path, typer.Argument(help="dataset dir (train/val/test.jsonl) or a JSONL")],
    card: Annotated[Path | None, typer.Option(help="write the dataset card JSON here")] = None,
) -> None:
    """Check a dataset without changing it: schema, grounding, duplicates, leaks; print a card."""
    from guardian.data.card import summary_lines
    from guardian.steps.validate import validate_data

    setup(None)
    if not data.exists():
        raise DataError(f"{data}: file not found")
    result, _kept = validate_data(data, card_out=card)
    for line in summary_lines(result):
        out.print(line, highlight=False)
    count = int(result["schema_errors"]["count"])
    if count:
        raise DataError(f"{data}: {count} malformed line(s), listed above")


@app.command()
@handled
def synthesize(
    chunks: Path,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="samples JSONL to write")],
    templates: Annotated[str | None, typer.Option(help="templates dir")] = None,
    seed: int = 0,
    plain: Annotated[
        bool, typer.Option("--plain", help="template Q/A without RAFT context")
    ] = False,
    distractors: Annotated[int | None, typer.Option(help="RAFT distractors per sample")] = None,
) -> None:
    """Turn chunks into Q/A samples (split by file: metadata.split says train/val/test)."""
    from guardian.core.jsonl import read_jsonl, write_json, write_jsonl
    from guardian.core.schema import Sample
    from guardian.steps.synthesize import Params

    setup(None)
    if not chunks.is_file():
        raise DataError(f"{chunks}: file not found")
    raw: dict[str, Any] = {"seed": seed, "raft": not plain}
    if templates:
        raw["templates_dir"] = templates
    if distractors is not None:
        raw["distractors"] = distractors
    params = Params.model_validate(raw)
    src = _tmp_input("chunks", chunks, "chunks.jsonl")
    try:
        tmp = _standalone("synthesize", params, {"chunks": src}, None)
        try:
            rows: list[Sample] = []
            for split in ("train", "val", "test"):
                rows += list(read_jsonl(tmp / f"{split}.jsonl", Sample))
            write_jsonl(out_file, rows)
            card = tmp / "card.json"
            if card.exists():
                write_json(out_file.with_suffix(".card.json"), json.loads(card.read_text()))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    out.print(f"wrote {out_file} ({len(rows)} samples)", highlight=False)


def _tmp_input(kind: str, file: Path, name: str) -> Path:
    """Wrap a single input file as an artifact dir of the given kind."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=f"guardian-in-{kind}-"))
    shutil.copy2(file, d / name)
    return d


def _dataset_dir(data: Path, only_split: str | None = None) -> Path:
    """A dataset dir (train/val/test.jsonl) from a dir as is, or from one JSONL file.

    A file's samples go to the split named in metadata.split (train when absent); with
    `only_split`, every sample of that split (or all, when none are tagged) becomes test.
    """
    import tempfile

    from guardian.core.jsonl import read_jsonl, write_jsonl
    from guardian.core.schema import Sample

    if data.is_dir():
        return data
    rows = list(read_jsonl(data, Sample))
    if not rows:
        raise DataError(f"{data}: no samples")
    d = Path(tempfile.mkdtemp(prefix="guardian-in-dataset-"))
    splits: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    if only_split is not None:
        tagged = [r for r in rows if r.metadata.get("split") == only_split]
        splits["test"] = tagged or rows
    else:
        for r in rows:
            split = str(r.metadata.get("split", "train"))
            splits[split if split in splits else "train"].append(r)
    for split, items in splits.items():
        write_jsonl(d / f"{split}.jsonl", items)
    return d


@app.command()
@handled
def train(
    data: Path,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="model dir to write")],
    base: Annotated[str | None, typer.Option(help="base model spec")] = None,
    method: Annotated[str, typer.Option(help="lora or pissa")] = "lora",
    max_steps: Annotated[int | None, typer.Option(help="optimizer steps")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate + plan only")] = False,
    config: ConfigOpt = None,
) -> None:
    """Train a LoRA/PiSSA adapter on samples (a JSONL file or a dataset dir)."""
    from pydantic import ValidationError

    from guardian.core.yamlfile import config_error
    from guardian.steps.train import Params

    cfg = setup(config)
    raw: dict[str, Any] = {"base": base or cfg.base_model, "method": method, "dry_run": dry_run}
    if max_steps is not None:
        raw["max_steps"] = max_steps
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise config_error("train", exc) from None
    ds = _dataset_dir(data)
    try:
        tmp = _standalone("train", params, {"dataset": ds}, None)
    finally:
        if ds != data:
            shutil.rmtree(ds, ignore_errors=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp), out_dir)
    out.print(f"wrote {out_dir}", highlight=False)


@app.command()
@handled
def evaluate(
    model_dir: Path,
    data: Annotated[Path, typer.Option("--data", help="samples JSONL (its test split is used)")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="metrics JSON to write")],
    baseline: Annotated[Path | None, typer.Option(help="champion model dir")] = None,
    em_items: Annotated[int | None, typer.Option(help="items for exact match")] = None,
) -> None:
    """Score a trained model against the untrained base (or --baseline) on test samples."""
    from guardian.steps.evaluate import Params

    setup(None)
    if not (model_dir / "adapter").is_dir():
        raise DataError(f"{model_dir}: not a trained model dir (no adapter/)")
    ds = _dataset_dir(data, only_split="test")
    inputs = {"model": model_dir, "dataset": ds}
    if baseline is not None:
        inputs["baseline"] = baseline
    params = Params(em_items=em_items) if em_items is not None else Params()
    try:
        tmp = _standalone("evaluate", params, inputs, None)
    finally:
        if ds != data:
            shutil.rmtree(ds, ignore_errors=True)
    try:
        atomic_copy(tmp / "metrics.json", out_file)
        atomic_copy(tmp / "items.jsonl", out_file.with_suffix(".items.jsonl"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out.print(f"wrote {out_file}", highlight=False)
