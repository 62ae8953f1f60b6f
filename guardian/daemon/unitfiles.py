"""Service files for `guardian run`: a systemd unit (Linux) or a launchd plist (macOS), rendered
for this install (the guardian executable, its config, the state dir) and written atomically.

Rendering is pure (`render`); `install` / `uninstall` touch one file and run nothing: the
CLI (guardian/cli/service.py) prints the commands that load it for the user to run. The files in
the repo's `systemd/` dir are `shipped_files()`, rendered for a /usr/bin (or /usr/local/bin)
install; a test keeps them equal.
"""

from __future__ import annotations

import math
import os
import plistlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from guardian.config.settings import GuardianConfig
from guardian.core.fsutil import atomic_write_text
from guardian.errors import ConfigError, GuardianError

Platform = Literal["linux", "darwin"]
Scope = Literal["user", "system"]

UNIT_NAME = "repo-guardian.service"
LABEL = "com.repo-guardian"
DEFAULT_USER = "repo-guardian"
SYSTEM_CONFIG = Path("/etc/repo-guardian/config.yaml")
DARWIN_SYSTEM_HOME = Path("/Library/Application Support/repo-guardian")
MARKER = "guardian service install"  # in every file we write; uninstall removes only those
STOP_MARGIN_SECONDS = 30  # TimeoutStopSec / ExitTimeOut = daemon.grace_seconds + this
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}", re.IGNORECASE)


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a service file depends on. `home` None means: the daemon resolves its own
    state dir (linux system: StateDirectory, GUARDIAN_HOME=%S/repo-guardian)."""

    platform: Platform
    scope: Scope
    command: tuple[str, ...]
    config: Path | None = None
    home: Path | None = None
    user_name: str = DEFAULT_USER
    grace_seconds: float = 120.0
    writable: tuple[Path, ...] = ()
    repos: tuple[Path, ...] = ()
    user_home: Path | None = None
    header: str = ""

    @property
    def stop_seconds(self) -> int:
        """How long the service manager waits after SIGTERM before SIGKILL."""
        return math.ceil(self.grace_seconds) + STOP_MARGIN_SECONDS

    @property
    def argv(self) -> list[str]:
        """The daemon's command line."""
        return [*self.command, "run", *(["--config", str(self.config)] if self.config else [])]


def guardian_command() -> tuple[str, ...]:
    """The absolute command that runs guardian: the console script beside this interpreter,
    else `python -m guardian`. sys.executable is not resolved: a venv's python is a symlink
    whose target would run without the venv's packages."""
    python = Path(os.path.abspath(sys.executable))
    script = python.parent / "guardian"
    if script.is_file() and os.access(script, os.X_OK):
        return (str(script),)
    return (str(python), "-m", "guardian")


def detect_platform(override: str | None = None) -> Platform:
    """`linux` (systemd) or `darwin` (launchd): the override, else this machine's."""
    name = override or ("darwin" if sys.platform == "darwin" else sys.platform)
    if name.startswith("linux"):
        return "linux"
    if name == "darwin":
        return "darwin"
    if override:
        raise ConfigError(f"--platform: expected linux or darwin (got {override!r})")
    raise GuardianError(
        f"no service manager support for {sys.platform}: pass --platform linux|darwin --print"
    )


def spec_for(
    cfg: GuardianConfig,
    *,
    scope: Scope,
    platform: Platform,
    user_name: str | None = None,
    command: tuple[str, ...] | None = None,
) -> ServiceSpec:
    """The service for this install and config. A system service without a config found uses
    /etc/repo-guardian/config.yaml; its state dir is the system one, whatever the config says
    (GUARDIAN_HOME wins over state_dir)."""
    if scope == "user" and user_name is not None:
        raise ConfigError("--user-name is for --system: a user service runs as you")
    name = user_name or DEFAULT_USER
    if not _USER_NAME.fullmatch(name):
        raise ConfigError(f"--user-name: not a valid user name: {name!r}")
    repos = tuple(cfg.repo_path(r) for r in cfg.repos)
    fetched = tuple(p for p, r in zip(repos, cfg.repos, strict=True) if r.remote)
    models = (cfg.resolve(cfg.promote.models_dir).resolve(),) if cfg.promote.models_dir else ()
    home = cfg.home if scope == "user" else (DARWIN_SYSTEM_HOME if platform == "darwin" else None)
    command = command or guardian_command()
    return ServiceSpec(
        platform=platform,
        scope=scope,
        command=command,
        config=cfg.source or (SYSTEM_CONFIG if scope == "system" else None),
        home=home,
        user_name=name,
        grace_seconds=cfg.daemon.grace_seconds,
        writable=(*models, *fetched) if scope == "system" else (),
        repos=repos,
        user_home=Path.home(),
        header=f"Written by `{MARKER}` ({scope}) for {command[0]}: install it again after "
        "moving guardian or its config.",
    )


def _unit_word(word: str, *, dollars: bool = True) -> str:
    """One word of a unit file line: C escapes, %% for a literal %, $$ for a literal $ where
    the key expands variables, double quotes when it holds blanks or quotes."""
    if "\n" in word or "\r" in word or not word:
        raise GuardianError(f"cannot put {word!r} in a unit file")
    text = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if dollars:
        text = text.replace("$", "$$")
    return f'"{text}"' if re.search(r"[\s'\";]", word) else text


_UNIT_HEAD = """\
# {header}
[Unit]
Description=Repo Guardian: keeps a local code model in step with its repos{after}
# A config that keeps failing is given up after 5 starts in 10 minutes, not retried forever.
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=notify
# Only the daemon's own pid is heard: its workers are not given NOTIFY_SOCKET, and a process
# that found it anyway could not feed the watchdog of a stuck daemon, nor speak for it.
NotifyAccess=main
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
# The daemon pings every WatchdogSec/2 from its own loop; training runs in worker
# subprocesses, so a long step never delays it. A missed ping aborts it; Restart= restarts it.
WatchdogSec=60
Restart=on-failure
RestartSec=10
# SIGTERM goes to the daemon only (mixed): it stops taking work and lets the running step
# checkpoint within daemon.grace_seconds ({grace:g} s) before it exits. Whatever is left then,
# or at TimeoutStopSec, is SIGKILLed as a group, and the state survives that (runs resume).
# control-group would SIGTERM the workers too, racing the daemon's own orderly stop;
# process would leave them running after the daemon is gone.
KillMode=mixed
TimeoutStopSec={stop}
# The kernel's OOM killer picks the biggest process, a training worker: the daemon reports
# that job failed and goes on (the default, stop, would take the whole service down).
OOMPolicy=continue
# Uncomment to cap training memory (the cap covers the daemon and its workers):
#MemoryHigh=6G
#MemoryMax=8G
Nice=10
# Not IOSchedulingClass=idle: the daemon's own SQLite writes, and with them its watchdog
# pings, would wait behind every other disk user.
IOSchedulingClass=best-effort
IOSchedulingPriority=7
SyslogIdentifier=repo-guardian
"""

_SYSTEM_TAIL = """\
User={user}
StateDirectory=repo-guardian
StateDirectoryMode=0750
Environment=GUARDIAN_HOME=%S/repo-guardian
UMask=0027
# Sandbox. The state dir is the only writable place: ProtectSystem=strict makes the rest of
# the file system read-only, ProtectHome=read-only keeps repos under /home readable (the user
# above still needs read permission on them). A mirror the daemon fetches (a repo with a
# remote) and a promote.models_dir outside the state dir are made writable below.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateMounts=yes
RemoveIPC=yes
# Remove PrivateDevices= to give training a GPU (/dev/nvidia*).
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
CapabilityBoundingSet=
# Not MemoryDenyWriteExecute=: torch's CPU kernels (oneDNN) are JIT-compiled.
{writable}
[Install]
WantedBy=multi-user.target
"""

_USER_TAIL = """\
{environment}# Runs as you, on the state dir your `guardian status` reads. ProtectSystem=,
# PrivateTmp= and the like need user namespaces in a user manager, which not every kernel
# grants; a sandboxed daemon is the system unit's job.
NoNewPrivileges=yes

[Install]
WantedBy=default.target
"""


def render_systemd(spec: ServiceSpec) -> str:
    """The unit file: system (dedicated user, sandboxed, StateDirectory) or user."""
    system = spec.scope == "system"
    head = _UNIT_HEAD.format(
        header=spec.header,
        after="\nAfter=network-online.target\nWants=network-online.target" if system else "",
        exec_start=" ".join(_unit_word(w) for w in spec.argv),
        grace=spec.grace_seconds,
        stop=spec.stop_seconds,
    )
    if system:
        writable = "".join(
            f"ReadWritePaths={_unit_word(f'-{p}', dollars=False)}\n" for p in spec.writable
        )
        return head + _SYSTEM_TAIL.format(user=spec.user_name, writable=writable)
    environment = ""
    if spec.home is not None:
        value = _unit_word(f"GUARDIAN_HOME={spec.home}", dollars=False)
        environment = f"Environment={value}\n"
    return head + _USER_TAIL.format(environment=environment)


def log_path(spec: ServiceSpec) -> Path:
    """Where launchd sends the daemon's stdout and stderr (JSON log lines)."""
    if spec.scope == "system":
        return Path("/Library/Logs/repo-guardian.log")
    return (spec.user_home or Path.home()) / "Library" / "Logs" / "repo-guardian.log"


def render_launchd(spec: ServiceSpec) -> str:
    """The launchd plist: a LaunchAgent (user) or a LaunchDaemon running as `user_name`.

    KeepAlive restarts it after a crash or a non-zero exit, not after a clean stop (systemd's
    on-failure). ExitTimeOut is the SIGTERM-to-SIGKILL wait, like TimeoutStopSec; launchd
    then kills the rest of the job's process group, like KillMode=mixed. ProcessType is
    Standard with Nice 10, not Background, whose throttling would keep training on the
    efficiency cores of Apple silicon. PATH adds Homebrew's git to launchd's bare default.
    """
    bin_dir = str(Path(spec.command[0]).parent)
    path = [bin_dir, "/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin"]
    env = {"PATH": ":".join(dict.fromkeys([*path, "/sbin"]))}
    if spec.home is not None:
        env["GUARDIAN_HOME"] = str(spec.home)
    log = str(log_path(spec))
    plist: dict[str, object] = {
        "Label": LABEL,
        "ProgramArguments": spec.argv,
        "EnvironmentVariables": env,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False, "Crashed": True},
        "ThrottleInterval": 10,
        "ExitTimeOut": spec.stop_seconds,
        "ProcessType": "Standard",
        "Nice": 10,
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    if spec.scope == "system":
        plist["UserName"] = spec.user_name
    text = plistlib.dumps(plist, sort_keys=False).decode("utf-8")
    doctype, rest = text.split("\n<plist", 1)
    comment = spec.header.replace("--", "- -")  # "--" may not appear in an XML comment
    return f"{doctype}\n<!-- {comment} -->\n<plist{rest}"


def render(spec: ServiceSpec) -> str:
    """The service file text for the spec's platform."""
    return render_systemd(spec) if spec.platform == "linux" else render_launchd(spec)


def target_path(spec: ServiceSpec) -> Path:
    """Where the service file goes: the user's systemd or LaunchAgents dir, or the system's."""
    if spec.platform == "darwin":
        name = f"{LABEL}.plist"
        if spec.scope == "system":
            return Path("/Library/LaunchDaemons") / name
        return Path.home() / "Library" / "LaunchAgents" / name
    if spec.scope == "system":
        return Path("/etc/systemd/system") / UNIT_NAME
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config").expanduser()
    return base / "systemd" / "user" / UNIT_NAME


@dataclass(frozen=True)
class Installed:
    """What `install` did: the file, and whether it was (re)written or already the same."""

    path: Path
    changed: bool


def _check_writable(directory: Path) -> None:
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        raise GuardianError(
            f"{directory}: not writable (a --system service is installed as root: "
            "`sudo $(command -v guardian) service install --system`, or --print it)"
        )


def install(spec: ServiceSpec, *, force: bool = False, path: Path | None = None) -> Installed:
    """Write the service file atomically; an identical one is left alone, a different one is
    replaced only with `force`."""
    target = path or target_path(spec)
    text = render(spec)
    if target.is_file() and target.read_text(encoding="utf-8", errors="replace") == text:
        return Installed(target, changed=False)
    if (target.exists() or target.is_symlink()) and not force:
        raise GuardianError(
            f"{target} exists and differs from what would be written "
            "(--print shows the new one; --force replaces it)"
        )
    _check_writable(target.parent)
    atomic_write_text(target, text)
    return Installed(target, changed=True)


def uninstall(spec: ServiceSpec, *, force: bool = False) -> Path | None:
    """Remove the service file we wrote (None if there is none). A file without our marker,
    or a systemd unit still enabled, is refused unless `force`."""
    target = target_path(spec)
    if not (target.exists() or target.is_symlink()):
        return None
    if not force and MARKER not in target.read_text(encoding="utf-8", errors="replace"):
        raise GuardianError(f"{target} was not written by `{MARKER}` (--force removes it)")
    if spec.platform == "linux" and not force:
        if any(p.is_symlink() for p in target.parent.glob(f"*.wants/{UNIT_NAME}")):
            flag = " --user" if spec.scope == "user" else ""
            raise GuardianError(
                f"{UNIT_NAME} is enabled: `systemctl{flag} disable --now repo-guardian` first"
            )
    target.unlink()
    return target


def shipped_files() -> dict[str, str]:
    """The files in the repo's systemd/ dir: ready for a /usr/bin (plist: /usr/local/bin)
    install; `guardian service install` writes them with this machine's paths instead."""
    system = ServiceSpec(
        platform="linux",
        scope="system",
        command=("/usr/bin/guardian",),
        config=SYSTEM_CONFIG,
        header=f"Usable as-is for /usr/bin/guardian and {SYSTEM_CONFIG}; otherwise "
        f"`{MARKER} --system` writes it with the right paths.",
    )
    user = ServiceSpec(
        platform="linux",
        scope="user",
        command=("/usr/bin/guardian",),
        header="Usable as-is for /usr/bin/guardian (copy it to ~/.config/systemd/user/"
        f"{UNIT_NAME}); otherwise `{MARKER}` writes it with the right paths.",
    )
    you = Path("/Users/you")
    agent = ServiceSpec(
        platform="darwin",
        scope="user",
        command=("/usr/local/bin/guardian",),
        home=you / ".local" / "share" / "guardian",
        user_home=you,
        header=f"An example for the user 'you': `{MARKER}` writes it with your paths "
        "(launchd expands neither ~ nor $HOME).",
    )
    return {
        UNIT_NAME: render_systemd(system),
        "repo-guardian.user.service": render_systemd(user),
        f"{LABEL}.plist": render_launchd(agent),
    }
