"""`guardian run`, `guardian status`: the daemon's commands."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from guardian.cli.app import ConfigOpt, app, handled, line, setup


@app.command("run")
@handled
def run_daemon(config: ConfigOpt = None) -> None:
    """Run the daemon: watch the configured repos, take triggers, keep their models current.

    One per state dir; SIGTERM/SIGINT stop it cleanly (running training checkpoints first),
    SIGHUP reloads config.yaml and skills.yaml. Meant for systemd/launchd (`guardian
    service install`), and fine in a terminal.
    """
    from guardian.daemon.service import Daemon

    cfg = setup(config)
    raise typer.Exit(Daemon(cfg.source).run())


def _ago(stamp: float | None) -> str:
    if not stamp:
        return "-"
    seconds = max(0, int(time.time() - float(stamp)))
    return f"{seconds // 60}m{seconds % 60:02d}s ago" if seconds >= 60 else f"{seconds}s ago"


@app.command()
@handled
def status(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The daemon's state, watched repos, queue, current step and last decision per repo."""
    from guardian.daemon.worker import last_line
    from guardian.engine.status import status as read_status

    cfg = setup(config)
    found = read_status(cfg.home)
    if as_json:
        line(json.dumps(found.model_dump(mode="json"), indent=2, sort_keys=True))
        return
    pid = f" (pid {found.pid}, watching by {found.watch_mode})" if found.running else ""
    line(f"daemon: {found.state}{pid}  state dir {cfg.home}")
    for repo in found.repos:
        decision = repo.last_decision
        said = (
            f"{'run' if decision.run else 'skip'} {_ago(decision.at)}: {decision.why}"
            if decision
            else "no decision yet"
        )
        line(f"  repo {repo.path} [{repo.playbook}]  last decision: {said}")
    for name, when in found.schedules.items():
        line(f"  schedule {name}: next {when}")
    line(f"queue: {len(found.queue)} job(s)")
    for job in found.queue:
        reasons = job.payload.reasons
        last = reasons[-1].split(" ", 1)[-1] if reasons else ""
        line(
            f"  {job.id} {job.status:<7} {job.kind:<7} {job.repo_name} "
            f"[{job.playbook}] x{job.payload.triggers} ({last})"
        )
    for step in found.steps:
        line(f"  now: run {step.run_id} step {step.skill} ({step.step})")
    for w in found.workers:
        progress = last_line(cfg.home / "logs" / "jobs" / f"{w.job}.log", 160)
        line(f"  worker pid {w.pid} job {w.job}: {progress or 'starting'}")
    for run in found.last_runs:
        error = f"({run.error})" if run.error else ""
        line(
            f"last run {run.id} {Path(run.repo_path).name}: {run.status}"
            f" {run.decision or ''} {error}".rstrip()
        )
