"""Git hooks that queue a guardian run: install, uninstall and status per repository.

Each hook is a small POSIX sh script marked with `MARKER`. It runs the hook it replaced first
(kept beside it as `<hook>.guardian-chained`, same arguments and stdin, its exit status is the
hook's), then starts `guardian trigger` detached in the background, so git never waits for
Python and never fails because of us. Uninstall removes only our scripts and puts the chained
hooks back as they were.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from guardian.config.settings import GuardianConfig
from guardian.core.fsutil import FILE_MODE, atomic_write_text
from guardian.core.gitutil import git_path, is_git_repo
from guardian.errors import RepoError

HOOK_NAMES = ("post-commit", "post-merge", "post-rewrite", "post-checkout")
MARKER = "# guardian-hook:"
REPO_LINE = "# guardian-repo: "
CHAIN_SUFFIX = ".guardian-chained"
# Set by git for a hook's own use; the trigger must find the repo from its path alone.
GIT_ENV = (
    "GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_COMMON_DIR GIT_PREFIX GIT_OBJECT_DIRECTORY"
    " GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_QUARANTINE_PATH"
)
# post-checkout's third argument is 1 for a branch checkout, 0 for `git checkout -- FILE`.
CONDITIONS = {"post-checkout": '[ "$3" = 1 ] && '}


class HookState(StrEnum):
    """What one hook file is, or what install/uninstall did to it."""

    INSTALLED = "installed"  # ours, nothing chained
    CHAINED = "chained"  # ours, running the hook it replaced first
    ABSENT = "absent"  # no hook, or nothing of ours to remove
    OTHER = "other"  # someone else's hook; guardian is not in it
    ORPHANED = "orphaned"  # a chained hook whose guardian hook is gone
    UNCHANGED = "unchanged"  # install found ours already up to date
    UPDATED = "updated"  # install rewrote ours (new repo, config or executable)
    CONFLICT = "conflict"  # a foreign hook and a chained one both exist: left alone
    REMOVED = "removed"  # uninstall deleted ours
    RESTORED = "restored"  # uninstall put the chained hook back in place


@dataclass(frozen=True)
class HookLine:
    """One hook's state or the action taken on it."""

    name: str
    state: HookState
    path: Path
    detail: str = ""


@dataclass(frozen=True)
class HookReport:
    """The hooks dir of a repo and one line per hook."""

    repo: Path
    hooks_dir: Path
    lines: list[HookLine] = field(default_factory=list)


@dataclass(frozen=True)
class Launch:
    """How a hook starts the trigger: the command before `trigger`, its env and config."""

    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    config: Path | None = None


def launch_for(config: GuardianConfig) -> Launch:
    """The guardian of this process, with its config file and $GUARDIAN_HOME pinned."""
    python = Path(sys.executable)
    script = python.with_name("guardian")
    command = (str(script),) if os.access(script, os.X_OK) else (str(python), "-m", "guardian")
    env: tuple[tuple[str, str], ...] = ()
    if os.environ.get("GUARDIAN_HOME"):
        env = (("GUARDIAN_HOME", str(config.home)),)
    source = config.source.resolve() if config.source else None
    return Launch(command, env, source)


def _git_repo(repo: Path) -> Path:
    repo = repo.expanduser().resolve()
    if not is_git_repo(repo):
        raise RepoError(f"{repo}: not a git repository")
    return repo


def hooks_dir(repo: Path) -> Path:
    """Where git runs this repo's hooks (`git rev-parse --git-path hooks`: core.hooksPath,
    linked worktrees and bare repos included), as an absolute path."""
    return git_path(_git_repo(repo), "hooks")


def hook_script(name: str, repo: Path, launch: Launch) -> str:
    """The sh script of one hook: chained hook first, then a detached `guardian trigger`."""
    argv = [*launch.command, "trigger", str(repo), "--reason", f"hook:{name}"]
    if launch.config is not None:
        argv += ["--config", str(launch.config)]
    exports = "".join(f"    export {k}={shlex.quote(v)}\n" for k, v in launch.env)
    return (
        "#!/bin/sh\n"
        f"{MARKER} {name}\n"
        "# Installed by `guardian hooks install`; `guardian hooks uninstall` removes it and\n"
        f"# puts back the hook it chains ({name}{CHAIN_SUFFIX}, run first, same args and stdin).\n"
        f"{REPO_LINE}{repo}\n"
        "status=0\n"
        f'chained="$0{CHAIN_SUFFIX}"\n'
        'if [ -f "$chained" ] && [ -x "$chained" ]; then\n'
        '    "$chained" "$@"\n'
        "    status=$?\n"
        "fi\n"
        "guardian_trigger() {\n"
        f"    unset {GIT_ENV}\n"
        f"{exports}"
        f"    [ -x {shlex.quote(launch.command[0])} ] || exit 0\n"
        f"    exec nohup {shlex.join(argv)}\n"
        "}\n"
        f"{CONDITIONS.get(name, '')}(guardian_trigger) </dev/null >/dev/null 2>&1 &\n"
        'exit "$status"\n'
    )


def _is_ours(path: Path) -> bool:
    """Whether a hook file carries our marker (unreadable or not a file: not ours)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    return MARKER.encode() in head


def _target(path: Path) -> str:
    """The repo one of our hooks triggers, from its marker lines."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[:8]:
        if line.startswith(REPO_LINE):
            return line[len(REPO_LINE) :]
    return "?"


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _write_hook(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    os.chmod(path, FILE_MODE | ((FILE_MODE & 0o444) >> 2))


def _install_one(name: str, folder: Path, repo: Path, launch: Launch) -> HookLine:
    path, chained = folder / name, folder / f"{name}{CHAIN_SUFFIX}"
    text = hook_script(name, repo, launch)
    if _exists(path) and _is_ours(path):
        if path.read_text(encoding="utf-8", errors="replace") == text:
            return HookLine(name, HookState.UNCHANGED, path)
        was = _target(path)
        _write_hook(path, text)
        return HookLine(name, HookState.UPDATED, path, f"rewritten (it triggered {was})")
    if _exists(path):
        if _exists(chained):
            why = f"{path.name} is not guardian's and {chained.name} exists; both left alone"
            return HookLine(name, HookState.CONFLICT, path, why)
        os.rename(path, chained)
        _write_hook(path, text)
        return HookLine(name, HookState.CHAINED, path, f"existing hook kept as {chained.name}")
    _write_hook(path, text)
    if _exists(chained):
        return HookLine(name, HookState.CHAINED, path, f"chaining {chained.name} again")
    return HookLine(name, HookState.INSTALLED, path)


def install(repo: Path, launch: Launch) -> HookReport:
    """Install (or refresh) our hooks in the repo's hooks dir, chaining any existing ones."""
    repo = _git_repo(repo)
    folder = hooks_dir(repo)
    folder.mkdir(parents=True, exist_ok=True)
    return HookReport(repo, folder, [_install_one(n, folder, repo, launch) for n in HOOK_NAMES])


def _uninstall_one(name: str, folder: Path) -> HookLine:
    path, chained = folder / name, folder / f"{name}{CHAIN_SUFFIX}"
    if _exists(path) and not _is_ours(path):
        detail = (
            f"not guardian's; left alone{f' (so is {chained.name})' if _exists(chained) else ''}"
        )
        return HookLine(name, HookState.OTHER, path, detail)
    ours = _exists(path)
    if _exists(chained):
        os.replace(chained, path)
        return HookLine(name, HookState.RESTORED, path, f"{chained.name} put back")
    if ours:
        path.unlink()
        return HookLine(name, HookState.REMOVED, path)
    return HookLine(name, HookState.ABSENT, path)


def uninstall(repo: Path) -> HookReport:
    """Remove our hooks from the repo's hooks dir and put back the hooks they chained."""
    repo = _git_repo(repo)
    folder = hooks_dir(repo)
    return HookReport(repo, folder, [_uninstall_one(n, folder) for n in HOOK_NAMES])


def _status_one(name: str, folder: Path, repo: Path) -> HookLine:
    path, chained = folder / name, folder / f"{name}{CHAIN_SUFFIX}"
    if not _exists(path):
        if _exists(chained):
            return HookLine(name, HookState.ORPHANED, path, f"{chained.name} without our hook")
        return HookLine(name, HookState.ABSENT, path)
    if not _is_ours(path):
        return HookLine(name, HookState.OTHER, path, "a hook that does not run guardian")
    target = _target(path)
    other = "" if target == str(repo) else f"triggers {target}"
    if _exists(chained):
        detail = "; ".join(filter(None, [f"runs {chained.name} first", other]))
        return HookLine(name, HookState.CHAINED, path, detail)
    return HookLine(name, HookState.INSTALLED, path, other)


def status(repo: Path) -> HookReport:
    """Each hook of ours in the repo's hooks dir: installed, chained, absent, other, orphaned."""
    repo = _git_repo(repo)
    folder = hooks_dir(repo)
    return HookReport(repo, folder, [_status_one(n, folder, repo) for n in HOOK_NAMES])
