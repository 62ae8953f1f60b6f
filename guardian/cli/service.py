"""`guardian service install|uninstall`: `guardian run` as a systemd (Linux) or launchd (macOS)
service, for you (`--user`, the default) or the machine (`--system`, as root). Writing the file
is the library's (guardian/daemon/unitfiles.py); loading it is left to the commands printed."""

from __future__ import annotations

import pwd
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from guardian.cli.app import ConfigOpt, app, err, handled, line, setup

if TYPE_CHECKING:
    from guardian.daemon.unitfiles import ServiceSpec

service_app = typer.Typer(
    name="service",
    help="Run `guardian run` as a systemd (Linux) or launchd (macOS) service.",
    no_args_is_help=True,
)
app.add_typer(service_app, name="service")

SystemOpt = Annotated[
    bool,
    typer.Option(
        "--system/--user",
        help="a system service as a dedicated user (needs root), or your own (default)",
    ),
]
PlatformOpt = Annotated[
    str | None,
    typer.Option("--platform", help="linux (systemd) or darwin (launchd); default: this machine"),
]
UserNameOpt = Annotated[
    str | None,
    typer.Option("--user-name", help="with --system: the user it runs as (default repo-guardian)"),
]


def _spec(config: Path | None, system: bool, platform: str | None, user: str | None) -> ServiceSpec:
    from guardian.daemon.unitfiles import detect_platform, spec_for

    cfg = setup(config)
    return spec_for(
        cfg,
        scope="system" if system else "user",
        platform=detect_platform(platform),
        user_name=user,
    )


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _systemd_steps(spec: ServiceSpec) -> list[str]:
    if spec.scope == "user":
        return [
            "systemctl --user daemon-reload && systemctl --user enable --now repo-guardian",
            "loginctl enable-linger $USER   # keep it running while you are logged out",
            "journalctl --user -u repo-guardian -f",
        ]
    steps = []
    if not _user_exists(spec.user_name):
        steps.append(
            "useradd --system --user-group --home-dir /var/lib/repo-guardian "
            f"--shell /usr/sbin/nologin {spec.user_name}"
        )
    return [
        *steps,
        "systemctl daemon-reload && systemctl enable --now repo-guardian",
        "journalctl -u repo-guardian -f",
    ]


def _launchd_steps(spec: ServiceSpec, path: Path) -> list[str]:
    from guardian.daemon.unitfiles import LABEL, log_path

    domain = "gui/$(id -u)" if spec.scope == "user" else "system"
    sudo = "sudo " if spec.scope == "system" else ""
    steps = []
    if spec.scope == "system" and spec.home is not None:
        steps.append(f"sudo mkdir -p '{spec.home}' && sudo chown {spec.user_name} '{spec.home}'")
    return [
        *steps,
        f"{sudo}launchctl bootout {domain}/{LABEL} 2>/dev/null   # if an older one is loaded",
        f"{sudo}launchctl bootstrap {domain} {path}",
        f"tail -f {log_path(spec)}",
    ]


def next_steps(spec: ServiceSpec, path: Path) -> list[str]:
    """The commands that load and start the installed service, in order."""
    steps = _systemd_steps(spec) if spec.platform == "linux" else _launchd_steps(spec, path)
    if spec.scope == "system":
        # git refuses to read a repo another user owns unless it is marked safe
        trust = [f"git config --system --add safe.directory {repo}" for repo in spec.repos]
        steps = [*trust, *steps]
    return steps


def notes(spec: ServiceSpec) -> list[str]:
    """Warnings about the install: a missing config, paths the service user may not read."""
    found: list[str] = []
    if spec.config is None:
        found.append("no config.yaml found: the service runs with the defaults (no repos)")
    elif not spec.config.is_file():
        found.append(f"{spec.config} does not exist yet: the service fails until it does")
    if spec.scope == "system":
        paths = [Path(spec.command[0]), *([spec.config] if spec.config else []), *spec.repos]
        for path in paths:
            if path.parts[1:2] in (("root",), ("home",), ("Users",)):
                found.append(f"{path}: the service user {spec.user_name} must be able to read it")
    return found


@service_app.command("install")
@handled
def install(
    config: ConfigOpt = None,
    system: SystemOpt = False,
    print_only: Annotated[
        bool, typer.Option("--print", help="print the service file; write nothing")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="replace a different existing file")
    ] = False,
    platform: PlatformOpt = None,
    user_name: UserNameOpt = None,
) -> None:
    """Write the service file for this install and print the commands that start it."""
    from guardian.daemon import unitfiles

    spec = _spec(config, system, platform, user_name)
    if print_only:
        sys.stdout.write(unitfiles.render(spec))
        return
    done = unitfiles.install(spec, force=force)
    line(f"{'wrote' if done.changed else 'unchanged'}: {done.path}")
    for note in notes(spec):
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    line("next:")
    for step in next_steps(spec, done.path):
        line(f"  {step}")


@service_app.command("uninstall")
@handled
def uninstall(
    config: ConfigOpt = None,
    system: SystemOpt = False,
    force: Annotated[
        bool, typer.Option("--force", help="remove it even if enabled or not ours")
    ] = False,
    platform: PlatformOpt = None,
) -> None:
    """Remove the service file `guardian service install` wrote."""
    from guardian.daemon import unitfiles

    spec = _spec(config, system, platform, None)
    removed = unitfiles.uninstall(spec, force=force)
    if removed is None:
        line(f"nothing to remove: {unitfiles.target_path(spec)} does not exist")
        return
    line(f"removed: {removed}")
    sudo = "sudo " if system else ""
    if spec.platform == "linux":
        line(f"next: {sudo}systemctl{'' if system else ' --user'} daemon-reload")
    else:
        domain = "system" if system else "gui/$(id -u)"
        line(f"next: {sudo}launchctl bootout {domain}/{unitfiles.LABEL}   # if it is loaded")
