"""Each pipeline step run by hand: mine, validate-data, synthesize, train, evaluate.

Every command takes `--config`, checks its output path before doing any work, computes in a
scratch dir under the state dir (removed on every exit), and only then puts the result at the
user's path, never replacing anything guardian did not write.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from guardian.cli.app import ConfigOpt, app, err, handled, out, setup
from guardian.cli.outputs import check_out_dir, check_out_file, place_dir, place_file, workspace
from guardian.errors import DataError
from guardian.ml.adapters import is_model_dir


def _standalone(
    cfg: Any,
    step: str,
    params: Any,
    out_dir: Path,
    inputs: dict[str, Path],
    repo: Path | None = None,
    files: dict[str, Path] | None = None,
) -> None:
    """Run one step outside the pipeline into `out_dir` (a workspace); print its metrics."""
    from guardian.steps import StepContext, get_step

    spec = get_step(step)
    out_dir.mkdir(parents=True, exist_ok=True)
    where = (repo or Path.cwd()).resolve()
    ctx = StepContext(
        repo=where,
        out_dir=out_dir,
        home=cfg.home,
        repo_name=where.name,
        inputs=inputs,
        files=files or {},
    )
    result = spec.fn(ctx, params)
    for scratch in result.discard:  # the outputs are in place: scratch files can go
        scratch.unlink(missing_ok=True)
    for key, value in result.metrics.items():
        err.print(f"  {key}: {value}", highlight=False)


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
    config: ConfigOpt = None,
) -> None:
    """Mine functions, methods and classes from the files git tracks at HEAD (or a plain dir)."""
    from guardian.steps.mine import Params, format_stats

    cfg = setup(config)
    raw: dict[str, Any] = {"allow_plain_dir": True}
    if language:
        raw["languages"] = language
    if since:
        raw["since"] = since
    params = Params.model_validate(raw)
    check_out_file(out_file)
    with workspace(cfg.home, "mine") as tmp:
        _standalone(cfg, "mine", params, tmp, {}, repo)
        place_file(tmp / "chunks.jsonl", out_file)
        if stats:
            stats_text = format_stats(json.loads((tmp / "stats.json").read_text()))
            out.print(stats_text, highlight=False, markup=False)
    out.print(f"wrote {out_file}", highlight=False)


@app.command("validate-data")
@handled
def validate_data_cmd(
    data: Annotated[Path, typer.Argument(help="dataset dir (train/val/test.jsonl) or a JSONL")],
    card: Annotated[Path | None, typer.Option(help="write the dataset card JSON here")] = None,
    config: ConfigOpt = None,
) -> None:
    """Check a dataset without changing it: schema, grounding, duplicates, leaks; print a card."""
    from guardian.data.card import summary_lines
    from guardian.steps.validate import validate_data

    setup(config)
    if not data.exists():
        raise DataError(f"{data}: file not found")
    if card is not None:
        check_out_file(card, "--card")
    result, kept = validate_data(data, card_out=card)
    for line in summary_lines(result):
        out.print(line, highlight=False)
    count = int(result["schema_errors"]["count"])
    if count:
        raise DataError(f"{data}: {count} malformed line(s), listed above")
    if not sum(kept.values()):
        raise DataError(f"{data}: no usable samples (every sample was dropped, or none exist)")


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
    config: ConfigOpt = None,
) -> None:
    """Turn chunks into Q/A samples (split by file: metadata.split says train/val/test)."""
    from guardian.core.jsonl import read_jsonl, write_jsonl
    from guardian.core.schema import Sample
    from guardian.steps.synthesize import Params

    cfg = setup(config)
    if not chunks.is_file():
        raise DataError(f"{chunks}: file not found")
    raw: dict[str, Any] = {"seed": seed, "raft": not plain}
    if templates:
        raw["templates_dir"] = templates
    if distractors is not None:
        raw["distractors"] = distractors
    params = Params.model_validate(raw)
    card_file = out_file.with_suffix(".card.json")
    check_out_file(out_file)
    check_out_file(card_file, "--out (its .card.json)")
    with workspace(cfg.home, "synthesize") as tmp:
        out_dir = tmp / "out"
        _standalone(cfg, "synthesize", params, out_dir, {}, files={"chunks": chunks})
        rows: list[Sample] = []
        for split in ("train", "val", "test"):
            rows += list(read_jsonl(out_dir / f"{split}.jsonl", Sample))
        write_jsonl(tmp / "samples.jsonl", rows)
        place_file(tmp / "samples.jsonl", out_file)
        if (out_dir / "card.json").exists():
            place_file(out_dir / "card.json", card_file)
    out.print(f"wrote {out_file} ({len(rows)} samples)", highlight=False)


def _dataset_dir(data: Path, tmp: Path, only_split: str | None = None) -> Path:
    """A dataset dir (train/val/test.jsonl) from a dir as is, or from one JSONL file.

    A file's samples go to the split named in metadata.split (train when absent); with
    `only_split`, every sample of that split (or all, when none are tagged) becomes test.
    """
    from guardian.core.jsonl import read_jsonl, write_jsonl
    from guardian.core.schema import Sample

    if data.is_dir():
        return data
    rows = list(read_jsonl(data, Sample))
    if not rows:
        raise DataError(f"{data}: no samples")
    d = tmp / "dataset"
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
    if not data.exists():
        raise DataError(f"{data}: file not found")
    check_out_dir(out_dir, [data])
    with workspace(cfg.home, "train") as tmp:
        ds = _dataset_dir(data, tmp)
        _standalone(cfg, "train", params, tmp / "model", {"dataset": ds})
        place_dir(tmp / "model", out_dir, "train")
    out.print(f"wrote {out_dir}", highlight=False)


@app.command()
@handled
def evaluate(
    model_dir: Path,
    data: Annotated[Path, typer.Option("--data", help="samples JSONL (its test split is used)")],
    out_file: Annotated[Path, typer.Option("--out", "-o", help="metrics JSON to write")],
    baseline: Annotated[Path | None, typer.Option(help="champion model dir")] = None,
    em_items: Annotated[int | None, typer.Option(help="items for exact match")] = None,
    guard_items: Annotated[
        int | None, typer.Option(help="guard-set items to score (0: the whole shipped set)")
    ] = None,
    probe_per_kind: Annotated[int | None, typer.Option(help="probe questions per kind")] = None,
    ask_per_kind: Annotated[
        int | None, typer.Option(help="answer-quality questions per kind (with --chunks)")
    ] = None,
    code_items: Annotated[int | None, typer.Option(help="items for CodeBLEU")] = None,
    chunks: Annotated[
        Path | None,
        typer.Option(help="chunks.jsonl (from `guardian mine`): run the knowledge probe"),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Score a trained model against the untrained base (or --baseline) on test samples."""
    from guardian.steps.evaluate import Params

    cfg = setup(config)
    for role, given in (("model", model_dir), ("--baseline", baseline)):
        if given is not None and not is_model_dir(given):
            raise DataError(
                f"{given}: not a trained model dir (no adapter/adapter_config.json) [{role}]"
            )
    if not data.exists():
        raise DataError(f"{data}: file not found")
    items_file = out_file.with_suffix(".items.jsonl")
    check_out_file(out_file)
    check_out_file(items_file, "--out (its .items.jsonl)")
    if chunks is not None and not chunks.is_file():
        raise DataError(f"{chunks}: file not found [--chunks]")
    probe_file = out_file.with_suffix(".probe.jsonl")
    answers_file = out_file.with_suffix(".answers.jsonl")
    if chunks is not None:
        check_out_file(probe_file, "--out (its .probe.jsonl)")
        check_out_file(answers_file, "--out (its .answers.jsonl)")
    knobs: dict[str, int | None] = {
        "em_items": em_items,
        "guard_items": guard_items,
        "probe_per_kind": probe_per_kind,
        "ask_per_kind": ask_per_kind,
        "code_items": code_items,
    }
    params = Params.model_validate({k: v for k, v in knobs.items() if v is not None})
    if chunks is None:
        params = params.model_copy(update={"probe_per_kind": 0, "ask_per_kind": 0})
    with workspace(cfg.home, "evaluate") as tmp:
        inputs = {"model": model_dir, "dataset": _dataset_dir(data, tmp, only_split="test")}
        if baseline is not None:
            inputs["baseline"] = baseline
        if chunks is not None:
            inputs["chunks"] = chunks.parent
        files = {"chunks": chunks} if chunks is not None else {}
        _standalone(cfg, "evaluate", params, tmp / "out", inputs, files=files)
        place_file(tmp / "out" / "metrics.json", out_file)
        place_file(tmp / "out" / "items.jsonl", items_file)
        if chunks is not None:
            place_file(tmp / "out" / "probe_items.jsonl", probe_file)
            if (tmp / "out" / "answer_items.jsonl").is_file():
                place_file(tmp / "out" / "answer_items.jsonl", answers_file)
    out.print(f"wrote {out_file}", highlight=False)
