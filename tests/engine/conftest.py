"""Shared fixtures for the engine tests: one tiny real base model per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.tinymodel import make_tiny_base


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture()
def demo_repo(tmp_path: Path) -> Path:
    from tests.engine.test_runner import ROOT, git

    repo = tmp_path / "demo-repo"
    shutil.copytree(ROOT / "examples" / "demo-project", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    return repo
