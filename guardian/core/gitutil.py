"""The one git helper: open a repo with a commit, read HEAD, count changed lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from guardian.errors import RepoError

if TYPE_CHECKING:
    import git


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


def resolve_commit(repo: Path, rev: str) -> str:
    """The full sha of `rev` (HEAD when empty) in `repo`, or a RepoError naming it."""
    import git

    with open_repo(repo) as handle:
        try:
            return str(handle.commit(rev or "HEAD").hexsha)
        except (ValueError, git.BadName):
            raise RepoError(f"{repo}: commit {rev} not found") from None


def changed_lines(repo: Path, since: str, paths: list[str]) -> int:
    """Lines added plus removed between `since` and HEAD, optionally limited to path globs."""
    args = ["--numstat", f"{since}..HEAD"]
    if paths:
        args += ["--", *[f":(glob){p}" for p in paths]]
    total = 0
    with open_repo(repo) as handle:
        diff = handle.git.diff(*args)
    for line in diff.splitlines():
        added, removed, *_ = line.split("\t")
        total += int(added) if added.isdigit() else 0
        total += int(removed) if removed.isdigit() else 0
    return total
