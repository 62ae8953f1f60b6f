"""The `guardian` command line: thin commands over the library (no torch import at start-up)."""

from __future__ import annotations

import functools
import json
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from guardian.errors import ConfigError, DataError, GuardianError

app = typer.Typer(
    name="guardian",
    help="Repo Guardian: keep a small local model fluent in your code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="config.yaml (default: ./config.yaml)")
]
PlaybookOpt = Annotated[str | None, typer.Option("--playbook", "-p", help="playbook name")]


def _fail(exc: GuardianError) -> None:
    problems = exc.problems if isinstance(exc, ConfigError) and exc.problems else [str(exc)]
    for line in problems:
        err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def handled(fn: F) -> F:
    """Turn GuardianErrors into one line per problem on stderr and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError

        from guardian.yamlfile import validation_problems

        try:
            return fn(*args, **kwargs)
        except GuardianError as exc:
            _fail(exc)
        except ValidationError as exc:
            problems = validation_problems("options", exc)
            _fail(ConfigError(problems[0], problems))

    return wrapper  # type: ignore[return-value]


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _setup(config_path: Path | None) -> Any:
    from guardian import log
    from guardian.config import load_config

    cfg = load_config(config_path)
    log.configure(cfg.log.level, cfg.log.format)
    return cfg


def _skills(cfg: Any) -> Any:
    from guardian.skills import default_skills_path, load_skills

    path = cfg.skills_path
    if not path.exists() and cfg.source is None:
        path = default_skills_path()
    return load_skills(path)


@app.command()
@handled
def validate(
    config: ConfigOpt = None,
    skills: Annotated[Path | None, typer.Option(help="skills.yaml to check")] = None,
) -> None:
    """Check config.yaml and skills.yaml; print every problem at once (exit 1 if any)."""
    from guardian.config import find_config, load_config
    from guardian.skills import load_skills

    problems: list[str] = []
    cfg = None
    try:
        cfg = load_config(config)
        where = find_config(config)
        out.print(f"{where or 'config (defaults)'}: ok", highlight=False)
    except ConfigError as exc:
        problems += exc.problems or [str(exc)]
    skills_path = skills or (cfg.skills_path if cfg else None)
    if skills_path is not None:
        try:
            doc = load_skills(skills_path)
            out.print(
                f"{skills_path}: ok ({len(doc.skills)} skills, {len(doc.playbooks)} playbooks)",
                highlight=False,
            )
        except ConfigError as exc:
            problems += exc.problems or [str(exc)]
    if problems:
        raise ConfigError(problems[0], problems)


@app.command()
@handled
def plan(
    repo: Path,
    playbook: PlaybookOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show what `run-once` would do now: trigger verdict and, per skill, reuse or run."""
    from guardian.plan import make_plan

    cfg = _setup(config)
    result = make_plan(cfg, _skills(cfg), repo, playbook)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    verdict = "yes" if result.should_trigger else "no"
    out.print(f"repo {result.repo} @ {result.commit[:12]}  playbook {result.playbook}")
    out.print(f"would trigger: {verdict} ({result.trigger_reason})", highlight=False)
    for i, s in enumerate(result.steps):
        key = s.key[:12] if s.key else "(depends on earlier steps)"
        out.print(f"  {i}. {s.skill:<14} {s.step:<11} {s.action:<6} {key}", highlight=False)


@app.command("run-once")
@handled
def run_once(repo: Path, playbook: PlaybookOpt = None, config: ConfigOpt = None) -> None:
    """Run a playbook once on REPO: mine → synthesize → validate → train → evaluate → gate."""
    from guardian.pipeline import Pipeline

    signal.signal(signal.SIGTERM, _sigterm)
    cfg = _setup(config)
    pipe = Pipeline(cfg, _skills(cfg))
    try:
        result = pipe.run_once(repo, playbook)
    finally:
        pipe.close()
    for s in result.steps:
        cache = "cache hit" if s.status == "cached" else s.status
        out.print(f"  {s.skill:<14} {cache:<10} {s.seconds:8.1f} s", highlight=False)
    if result.decision is None:
        out.print("decision: none", highlight=False)
    else:
        word = "PASS" if result.decision.passed else "FAIL"
        out.print(f"decision: {word}", highlight=False)
        for reason in result.decision.reasons:
            out.print(f"  {reason}", highlight=False)
    if result.note:
        out.print(result.note, highlight=False)
    assert result.report_dir is not None
    out.print(f"report: {result.report_dir / 'report.md'}", highlight=False)


def _standalone(step: str, params: Any, inputs: dict[str, Path], repo: Path | None) -> Path:
    """Run one step outside the pipeline into a temp dir; the caller moves what it needs."""
    import tempfile

    from guardian.config import load_config
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


def _move(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copy2(src, tmp)
    tmp.replace(dest)


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

    _setup(None)
    raw: dict[str, Any] = {"allow_plain_dir": True}
    if language:
        raw["languages"] = language
    if since:
        raw["since"] = since
    params = Params.model_validate(raw)
    tmp = _standalone("mine", params, {}, repo)
    try:
        _move(tmp / "chunks.jsonl", out_file)
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
    from guardian.dataset_card import summary_lines
    from guardian.steps.validate import validate_data

    _setup(None)
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
    from guardian.records import Sample, read_jsonl, write_json, write_jsonl
    from guardian.steps.synthesize import Params

    _setup(None)
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

    from guardian.records import Sample, read_jsonl, write_jsonl

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

    from guardian.steps.train import Params
    from guardian.yamlfile import validation_problems

    cfg = _setup(config)
    raw: dict[str, Any] = {"base": base or cfg.base_model, "method": method, "dry_run": dry_run}
    if max_steps is not None:
        raw["max_steps"] = max_steps
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems("train", exc)
        raise ConfigError(problems[0], problems) from None
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

    _setup(None)
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
        _move(tmp / "metrics.json", out_file)
        _move(tmp / "items.jsonl", out_file.with_suffix(".items.jsonl"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out.print(f"wrote {out_file}", highlight=False)


@app.command()
@handled
def report(
    run_id: Annotated[str | None, typer.Argument(help="run id (default: latest)")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md or json")] = "md",
    config: ConfigOpt = None,
) -> None:
    """Print a run's gate report (the latest run by default)."""
    from guardian.report import load_report, render_markdown
    from guardian.state import StateStore

    if fmt not in {"md", "json"}:
        raise ConfigError(f"--format: expected md or json (got {fmt!r})")
    cfg = _setup(config)
    with StateStore(cfg.home) as store:
        rep = load_report(cfg.home, run_id, store)
    if fmt == "json":
        sys.stdout.write(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_markdown(rep))


@app.command()
@handled
def runs(config: ConfigOpt = None, limit: int = 20) -> None:
    """List recent runs with their status and decision."""
    from guardian.state import StateStore

    cfg = _setup(config)
    with StateStore(cfg.home) as store:
        for r in store.list_runs(limit=limit):
            out.print(
                f"{r['id']}  {r['status']:<11} {r['decision'] or '-':<5} "
                f"{r['playbook']:<10} {r['repo_name']} @ {(r['commit_sha'] or '')[:7]}",
                highlight=False,
            )


def main() -> None:
    """Console-script entry point."""
    app()
