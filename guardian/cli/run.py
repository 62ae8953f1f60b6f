"""Commands over the whole loop: validate, plan, run-once, report, runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from guardian.cli.app import (
    ConfigOpt,
    PlaybookOpt,
    app,
    handled,
    line,
    out,
    setup,
    skills_of,
    skills_path_of,
)
from guardian.core.fsutil import atomic_write_text
from guardian.errors import ConfigError, StateError


@app.command()
@handled
def validate(
    config: ConfigOpt = None,
    skills: Annotated[Path | None, typer.Option(help="skills.yaml to check")] = None,
) -> None:
    """Check config.yaml and skills.yaml; print every problem at once (exit 1 if any)."""
    from guardian.engine.check import check_config

    result = check_config(config, skills)
    for ok in (result.skills_ok, result.config_ok):
        if ok is not None:
            out.print(ok, highlight=False)
    result.raise_problems()


@app.command()
@handled
def plan(
    repo: Path,
    playbook: PlaybookOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show what `run-once` would do now: trigger verdict and, per skill, reuse or run."""
    from guardian.engine.plan import make_plan

    cfg = setup(config)
    result = make_plan(cfg, skills_of(cfg), repo, playbook)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    verdict = "yes" if result.should_trigger else "no"
    out.print(f"repo {result.repo} @ {result.commit[:12]}  playbook {result.playbook}")
    out.print(f"would trigger: {verdict} ({result.trigger_reason})", highlight=False)
    if result.last_commit:
        fns = result.changed_functions
        shown = ", ".join(fns[:5]) + (f", +{len(fns) - 5} more" if len(fns) > 5 else "")
        out.print(
            f"change since {result.last_commit[:7]}: {result.commits} commits, "
            f"{len(result.changed_files)} files, {result.changed_lines} lines, "
            f"{len(fns)} functions{(' (' + shown + ')') if fns else ''}",
            highlight=False,
        )
    for i, s in enumerate(result.steps):
        key = s.key[:12] if s.key else "(depends on earlier steps)"
        note = f"  ({s.note})" if s.note else ""
        out.print(f"  {i}. {s.skill:<14} {s.step:<11} {s.action:<6} {key}{note}", highlight=False)


@app.command("run-once")
@handled
def run_once(repo: Path, playbook: PlaybookOpt = None, config: ConfigOpt = None) -> None:
    """Run a playbook once on REPO: mine → synthesize → validate → train → evaluate → gate."""
    from guardian.engine.runner import Pipeline

    cfg = setup(config)
    pipe = Pipeline(cfg, skills_of(cfg))
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
    if result.talk:
        out.print(f"talk to it: {result.talk}", highlight=False)
    if result.status == "promotion_pending":
        raise typer.Exit(3)


@app.command()
@handled
def report(
    run_id: Annotated[str | None, typer.Argument(help="run id (default: latest)")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="md, json or html")] = "md",
    open_it: Annotated[
        bool, typer.Option("--open", help="open the run's report.html in a browser")
    ] = False,
    list_runs: Annotated[
        bool, typer.Option("--list", help="list recent runs and their decisions")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Print a run's gate report (the latest run by default), or list recent runs."""
    from guardian.engine.report import render, report_of, reports_dir
    from guardian.engine.report.document import FORMATS
    from guardian.store.state import StateStore

    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)} (got {fmt!r})")
    cfg = setup(config)
    if list_runs:
        _list_runs(cfg.home, 20)
        return
    with StateStore(cfg.home) as store:
        rep = report_of(store, run_id)
    if open_it:
        import webbrowser

        page = reports_dir(cfg.home) / rep["run_id"] / "report.html"
        if not page.is_file():
            atomic_write_text(page, render(rep, "html"))
        if not webbrowser.open(page.as_uri()):
            raise StateError(f"{page}: no browser to open it with (open the file by hand)")
        out.print(f"opened {page}", highlight=False)
        return
    sys.stdout.write(render(rep, fmt))


@app.command()
@handled
def gate(
    run_id: Annotated[str, typer.Argument(help="the run to judge again")],
    config: ConfigOpt = None,
) -> None:
    """Judge a finished run again with the current skills.yaml gate, printing every rule.

    Exit code 0 when the challenger would pass, 1 when it would not; nothing is promoted.
    """
    from guardian.evaluation.gate import decide
    from guardian.store.records import GateInputs
    from guardian.store.state import StateStore

    cfg = setup(config)
    with StateStore(cfg.home) as store:
        run = store.runs.require(run_id)
    skills = skills_of(cfg)
    playbook = skills.playbooks.get(run.playbook)
    if playbook is None:
        raise ConfigError(
            f"{skills_path_of(cfg)}: playbook '{run.playbook}' of run {run_id} is gone"
        )
    evaluation = run.evaluation or {}
    challenger = evaluation.get("challenger")
    if not challenger:
        raise StateError(f"run {run_id}: no evaluation metrics to judge (status {run.status})")
    used = run.gate_inputs or GateInputs(
        baseline=evaluation.get("baseline"),
        baseline_kind=evaluation.get("baseline_kind") or "base",
        differences=evaluation.get("difference_ci"),
    )
    kind = used.baseline_kind
    decision = decide(
        challenger, used.baseline, playbook.gate, kind, used.differences, used.train_samples
    )
    line(
        f"run {run_id} (playbook {run.playbook}) against the {kind}: "
        f"{'PASS' if decision.passed else 'FAIL'}",
    )
    for reason in decision.reasons:
        line(f"  {reason}")
    was = run.gate
    if was is not None and was.passed != decision.passed:
        line(f"  (the run itself was judged {'PASS' if was.passed else 'FAIL'})")
    if not decision.passed:
        raise typer.Exit(1)


@app.command()
@handled
def promote(
    run_id: Annotated[str, typer.Argument(help="the finished run whose model to promote")],
    force: Annotated[
        bool, typer.Option("--force", help="promote even though the run failed its gate")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="why the gate is overridden (recorded)")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Make a finished run's model the champion, on the configured target (local, Ollama).

    A run that failed its gate needs --force and --reason; who, why and when are recorded in
    the state and in the run's report.
    """
    from guardian.engine.promote import promote_run

    cfg = setup(config)
    done = promote_run(cfg, skills_of(cfg), run_id, force=force, reason=reason)
    if done.already:
        line(f"run {run_id} is already the champion ({done.path})")
        return
    where = done.placed.where() if done.placed else str(done.path)
    line(f"promoted run {run_id} to {where}")
    if done.placed is not None:
        line(f"  talk to it: {done.placed.talk(done.repo)}")
    if done.override:
        line(f"  gate overridden by {done.override.by}: {done.override.reason}")


@app.command()
@handled
def export(
    target: Annotated[str, typer.Argument(help="a run id, or a train output dir")],
    fmt: Annotated[str, typer.Option("--format", help="export format: gguf")] = "gguf",
    quant: Annotated[str, typer.Option("--quant", help="f16, q8_0 or f32")] = "f16",
    out: Annotated[
        Path | None, typer.Option("--out", help="file to write (default: <home>/exports/)")
    ] = None,
    adapter_only: Annotated[
        bool, typer.Option("--adapter-only", help="the LoRA adapter alone (llama.cpp --lora)")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Write a trained model as one GGUF file: its LoRA adapter merged into its base, with
    the base's tokenizer and chat template, for llama.cpp and Ollama."""
    from guardian.engine.exporting import export_gguf
    from guardian.engine.resolve import resolve_model
    from guardian.export.gguf import QUANTS

    if fmt != "gguf":
        raise ConfigError(f"--format: expected gguf (got {fmt!r})")
    if quant not in QUANTS:
        raise ConfigError(f"--quant: expected one of {', '.join(QUANTS)} (got {quant!r})")
    cfg = setup(config)
    model = resolve_model(cfg, skills_of(cfg), target)
    if model.model_dir is None:
        raise ConfigError(f"{target}: the untrained base has no adapter to export")
    path = export_gguf(
        cfg,
        model.model_dir,
        model.name,
        quant=quant,  # type: ignore[arg-type]
        out=out,
        adapter_only=adapter_only,
    )
    line(str(path))


def _list_runs(home: Path, limit: int) -> None:
    """Recent runs, newest first: id, status, decision, playbook, repo and commit."""
    from guardian.store.state import StateStore

    with StateStore(home) as store:
        rows = store.runs.recent(limit=limit)
    if not rows:
        line(f"{home}: no runs yet")
    for r in rows:
        line(
            f"{r.id}  {r.status:<11} {r.decision or '-':<5} "
            f"{r.playbook:<10} {r.repo_name} @ {(r.commit_sha or '')[:7]}",
        )


@app.command()
@handled
def runs(config: ConfigOpt = None, limit: int = 20) -> None:
    """List recent runs with their status and decision."""
    _list_runs(setup(config).home, limit)


@app.command()
@handled
def doctor(config: ConfigOpt = None) -> None:
    """Check the state dir (database, artifacts, champions), repair what is safe, report it."""
    from guardian.engine.doctor import examine

    cfg = setup(config)
    found = examine(cfg.home)
    for finding in found:
        mark = "ok  " if finding.ok else "FAIL"
        out.print(f"{mark} {finding.area:<10} {finding.message}", highlight=False)
    bad = [f for f in found if not f.ok]
    if bad:
        raise StateError(f"{len(bad)} problem(s) need attention (listed above)")
