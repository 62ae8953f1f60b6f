"""Build small real git repositories for tests with GitPython (no global git config needed)."""

from __future__ import annotations

from pathlib import Path

import git


def _write(root: Path, files: dict[str, str | bytes]) -> list[str]:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    return list(files)


def make_git_repo(root: Path, files: dict[str, str | bytes], message: str = "init") -> git.Repo:
    """Write `files` (relative path -> text or bytes) under `root`, git-init it and commit them.

    user.name/email are set in the repo's own config so commits work on a bare machine.
    """
    root.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Guardian Test")
        cfg.set_value("user", "email", "guardian-test@example.invalid")
        cfg.set_value("commit", "gpgsign", "false")
    if files:
        commit_files(repo, files, message)
    return repo


def commit_files(
    repo: git.Repo,
    files: dict[str, str | bytes],
    message: str,
    delete: tuple[str, ...] = (),
) -> str:
    """Write `files`, remove the paths in `delete`, stage and commit; returns the new sha."""
    paths = _write(Path(repo.working_tree_dir or "."), files)
    if paths:
        repo.git.add("--", *paths)
    if delete:
        repo.git.rm("-q", "--", *delete)
    repo.git.commit("-m", message, "--no-verify")
    return str(repo.head.commit.hexsha)
