"""Shared by the benchmark scripts: commit a folder as a git repo with a fixed identity and date."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Fixed author and dates give the same commit sha every time, so reruns hit the caches.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}


def git(repo: Path, *args: str) -> None:
    """Run one git command in `repo` with the benchmark identity."""
    subprocess.run(["git", *args], cwd=repo, check=True, env={**os.environ, **GIT_ENV})


def commit_tree(repo: Path, message: str) -> None:
    """Make `repo` (a folder of files) a git repo on `main` with everything in one commit."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
