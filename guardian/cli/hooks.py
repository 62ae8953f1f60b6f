"""`guardian hooks install|uninstall|status REPO` and `guardian trigger REPO`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from guardian.cli.app import ConfigOpt, PlaybookOpt, app, handled, line, setup
from guardian.errors import GuardianError

if TYPE_CHECKING:
    from guardian.daemon.hooks import HookReport

hooks_app = typer.Typer(
    name="hooks",
    help="Git hooks (post-commit, post-merge, post-rewrite, post-checkout) that queue a run.",
    no_args_is_help=True,
)
app.add_typer(hooks_app, name="hooks")

RepoArg = Annotated[Path, typer.Argument(help="the git repository")]


def _print(report: HookReport) -> None:
    line(f"hooks dir: {report.hooks_dir}")
    for h in report.lines:
        detail = f"  ({h.detail})" if h.detail else ""
        line(f"  {h.name:<14} {h.state:<10}{detail}".rstrip())


@hooks_app.command("install")
@handled
def install_hooks(repo: RepoArg, config: ConfigOpt = None) -> None:
    """Install hooks that queue a run of REPO; existing hooks are kept and run first."""
    from guardian.daemon.hooks import HookState, install, launch_for

    report = install(repo, launch_for(setup(config)))
    _print(report)
    conflicts = [h.name for h in report.lines if h.state == HookState.CONFLICT]
    if conflicts:
        raise GuardianError(f"not installed: {', '.join(conflicts)} (see above)")


@hooks_app.command("uninstall")
@handled
def uninstall_hooks(repo: RepoArg) -> None:
    """Remove guardian's hooks from REPO and put back the hooks they chained."""
    from guardian.daemon.hooks import HookState, uninstall

    report = uninstall(repo)
    acted = {HookState.REMOVED, HookState.RESTORED}
    if not any(h.state in acted for h in report.lines):
        line(f"no guardian hooks in {report.hooks_dir}: nothing to uninstall")
        return
    _print(report)


@hooks_app.command("status")
@handled
def hooks_status(repo: RepoArg) -> None:
    """Show each hook of REPO: installed, chained, absent, other (not guardian's), orphaned."""
    from guardian.daemon.hooks import status

    _print(status(repo))


@app.command()
@handled
def trigger(
    repo: RepoArg,
    reason: Annotated[str, typer.Option("--reason", help="why (recorded on the job)")] = "cli",
    playbook: PlaybookOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Queue a run of REPO (joining a queued one) and wake the daemon if it runs."""
    from guardian.engine.trigger import trigger as enqueue

    done = enqueue(setup(config), repo, reason, playbook)
    woke = "daemon woken" if done.woke else "no daemon running (queued for when one starts)"
    kind = "joined" if done.joined else "new"
    playbook_text = done.playbook or "the daemon's for this repo"
    line(f"job {done.job_id} {kind} (playbook {playbook_text}); {woke}")
