"""The one git helper: every git command guardian runs, and the errors it turns them into."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from guardian.errors import RepoError

if TYPE_CHECKING:
    import git

FetchProcess = subprocess.Popen[bytes]


def open_repo(repo: Path) -> git.Repo:
    """Open `repo` as a git repository whose HEAD has a commit; the caller closes it."""
    import git

    if repo.is_file():
        raise RepoError(f"{repo}: is a file; give the repository's directory")
    if not repo.is_dir():
        raise RepoError(f"{repo}: no such directory")
    try:
        handle = git.Repo(repo)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoError(f"{repo}: not a git repository") from None
    if not handle.head.is_valid():
        handle.close()
        raise RepoError(f"{repo}: repository has no commits")
    return handle


def is_git_repo(path: Path) -> bool:
    """Whether `path` is inside a git work tree (commits or not)."""
    import git

    try:
        git.Repo(path).close()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False
    return True


def head_tree_sha(repo: Path) -> str:
    """The sha of HEAD^{tree}: identical trees mine identically, so it keys the mine cache."""
    with open_repo(repo) as handle:
        return str(handle.head.commit.tree.hexsha)


def head_commit(repo: Path) -> str:
    """HEAD's commit sha; a missing, non-git or empty repo is a RepoError."""
    with open_repo(repo) as handle:
        return str(handle.head.commit.hexsha)


def head_and_tagged(repo: Path) -> tuple[str, bool]:
    """HEAD's commit sha and whether a tag points at it (read together, so they agree)."""
    with open_repo(repo) as handle:
        head = str(handle.head.commit.hexsha)
        return head, any(t.commit.hexsha == head for t in handle.tags)


def resolve_commit(repo: Path, rev: str) -> str:
    """The full sha of `rev` (HEAD when empty) in `repo`, or a RepoError naming it."""
    import git

    with open_repo(repo) as handle:
        try:
            return str(handle.commit(rev or "HEAD").hexsha)
        except (ValueError, git.BadName):
            raise RepoError(f"{repo}: commit {rev} not found") from None


def _pathspec(paths: list[str]) -> list[str]:
    """Path globs as the arguments that limit a diff to them (none: the whole tree)."""
    return ["--", *[f":(glob){p}" for p in paths]] if paths else []


def changed_lines(repo: Path, since: str, paths: list[str]) -> int:
    """Lines added plus removed between `since` and HEAD, optionally limited to path globs."""
    total = 0
    with open_repo(repo) as handle:
        diff = handle.git.diff("--numstat", f"{since}..HEAD", *_pathspec(paths))
    for line in diff.splitlines():
        added, removed, *_ = line.split("\t")
        total += int(added) if added.isdigit() else 0
        total += int(removed) if removed.isdigit() else 0
    return total


def count_commits(repo: Path, since: str, until: str) -> int:
    """Commits reachable from `until` but not `since`; a RepoError when git cannot count them
    (`since` rewritten away by a force push, say)."""
    import git

    with open_repo(repo) as handle:
        try:
            return int(handle.git.rev_list("--count", f"{since}..{until}"))
        except (git.GitCommandError, ValueError):
            raise RepoError(f"{repo}: cannot count commits {since}..{until}") from None


def changed_files(repo: Path, since: str, until: str, paths: list[str]) -> list[str]:
    """Paths that differ between two commits, optionally limited to path globs."""
    with open_repo(repo) as handle:
        out = handle.git.diff("--name-only", since, until, *_pathspec(paths))
    return [f for f in out.splitlines() if f]


def file_at(repo: Path, rev: str, path: str) -> bytes | None:
    """The bytes of `path` as committed at `rev`, or None when it is absent there."""
    import git

    with open_repo(repo) as handle:
        try:
            return bytes(handle.git.show(f"{rev}:{path}", stdout_as_string=False))
        except git.GitCommandError:
            return None


def git_path(repo: Path, name: str) -> Path:
    """Where git keeps `name` for `repo`, absolute (`git rev-parse --git-path`: config such as
    core.hooksPath, linked worktrees and bare repos included); the repo may have no commits."""
    import git

    with git.Repo(repo) as handle:
        found = Path(handle.git.rev_parse("--git-path", name))
        cwd = Path(handle.working_dir)
    return found if found.is_absolute() else (cwd / found).resolve()


def run_git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Raw stdout of `git -C repo args` (bytes, for `ls-tree -z` and `cat-file --batch`);
    a failure is a RepoError with git's last line of stderr."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=True
        )
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RepoError(f"{repo}: git {args[0]} failed: {detail[-1] if detail else exc}") from None
    return proc.stdout


def is_commit(repo: Path, rev: str) -> bool:
    """Whether `rev` names a commit in `repo` (a tag of one counts)."""
    cmd = ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def start_fetch(repo: Path, remote: str) -> FetchProcess:
    """Start `git fetch --quiet <remote>` in a session of its own, so `stop_fetch` can end it
    with its helpers (ssh); it never prompts for credentials, and its stderr is piped."""
    return subprocess.Popen(
        ["git", "-C", str(repo), "fetch", "--quiet", remote],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        start_new_session=True,
    )


def stop_fetch(proc: FetchProcess) -> None:
    """SIGTERM a fetch's whole process group: git removes its lock files on the way out."""
    with suppress(OSError):
        os.killpg(proc.pid, signal.SIGTERM)


def wait_fetch(proc: FetchProcess, timeout: float) -> tuple[int, str]:
    """Wait for a fetch (stopped once `timeout` seconds pass): its exit code and its stderr,
    with credentials in URLs masked so the text can be logged."""
    try:
        err = proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        stop_fetch(proc)
        err = proc.communicate()[1] + b"\ntimed out"
    text = re.sub(r"://[^/\s@]+@", "://***@", err.decode(errors="replace").strip())
    return proc.returncode, text


def archive(repo: Path, commit: str, dest: Path) -> None:
    """Write the tree of `commit` into the existing dir `dest` (`git archive`, streamed; no
    .git, the repo itself untouched); a failure is a RepoError."""
    import tarfile

    proc = subprocess.Popen(
        ["git", "-C", str(repo), "archive", "--format=tar", commit],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = proc.stdout, proc.stderr
    if stdout is None or stderr is None:  # pragma: no cover - both are pipes
        raise RepoError(f"{repo}: git archive has no output pipe")
    unpack_error = ""
    try:
        with tarfile.open(fileobj=stdout, mode="r|") as tar:
            tar.extractall(dest, filter="data")
        while stdout.read(1 << 16):  # the end-of-archive padding, so git never meets EPIPE
            pass
    except tarfile.TarError as exc:
        unpack_error = str(exc)
        proc.kill()
    finally:
        stdout.close()
        err = stderr.read().decode("utf-8", "replace").strip().splitlines()
        stderr.close()
        code = proc.wait()
    if code > 0 or (code != 0 and not unpack_error):  # < 0: killed by us after a bad member
        raise RepoError(f"{repo}: git archive {commit} failed: {err[-1] if err else code}")
    if unpack_error:
        raise RepoError(f"{repo}: cannot unpack commit {commit}: {unpack_error}")
