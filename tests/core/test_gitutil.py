"""The git helper on real repositories: revisions, counts, files at a commit, and fetches."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.core.gitutil import (
    changed_files,
    count_commits,
    file_at,
    head_and_tagged,
    is_commit,
    run_git,
    start_fetch,
    wait_fetch,
)
from guardian.errors import RepoError
from tests.helpers_git import commit_files, make_git_repo


def test_revisions_files_and_counts(tmp_path: Path) -> None:
    repo = make_git_repo(tmp_path / "r", {"a.py": "x = 1\n", "doc.md": "hi\n"})
    root = tmp_path / "r"
    first = repo.head.commit.hexsha
    assert head_and_tagged(root) == (first, False)
    last = commit_files(repo, {"a.py": "x = 2\n", "b.py": "y = 1\n"}, "two")
    repo.create_tag("v1")
    assert head_and_tagged(root) == (last, True)
    assert count_commits(root, first, last) == 1
    assert changed_files(root, first, last, []) == ["a.py", "b.py"]
    assert changed_files(root, first, last, ["b*"]) == ["b.py"]
    assert file_at(root, first, "a.py") == b"x = 1"  # GitPython drops the final newline
    assert file_at(root, first, "b.py") is None
    assert is_commit(root, "v1") and is_commit(root, first)
    assert not is_commit(root, "nope") and not is_commit(root, "HEAD^{tree}")
    with pytest.raises(RepoError, match="cannot count commits"):
        count_commits(root, "0" * 40, last)


def test_run_git_failure_names_the_command_and_gits_reason(tmp_path: Path) -> None:
    make_git_repo(tmp_path / "r", {"a.py": "x = 1\n"})
    assert run_git(tmp_path / "r", "cat-file", "--batch", stdin=b"HEAD:a.py\n").endswith(
        b"\nx = 1\n\n"
    )
    with pytest.raises(RepoError, match=r"r: git ls-tree failed: fatal: Not a valid object name"):
        run_git(tmp_path / "r", "ls-tree", "no-such-rev")


def _fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """A repo whose remote `origin` is reached through an ssh stand-in running `body`."""
    make_git_repo(tmp_path / "r", {"a.py": "x = 1\n"})
    run_git(tmp_path / "r", "remote", "add", "origin", "ssh://user:pw@example.invalid/x.git")
    ssh = tmp_path / "fake-ssh"
    ssh.write_text(f"#!/bin/sh\n{body}\n")
    ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH", str(ssh))
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    return tmp_path / "r"


def test_failed_fetch_reports_its_error_with_credentials_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "echo 'fatal: cannot reach ssh://user:pw@example.invalid/x.git' >&2; exit 1"
    repo = _fake_ssh(tmp_path, monkeypatch, body)
    code, text = wait_fetch(start_fetch(repo, "origin"), timeout=30.0)
    assert code != 0
    assert "ssh://***@example.invalid/x.git" in text and "pw" not in text


def test_fetch_past_its_timeout_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _fake_ssh(tmp_path, monkeypatch, "exec sleep 30")
    code, text = wait_fetch(start_fetch(repo, "origin"), timeout=0.5)
    assert code != 0 and text.endswith("timed out")
