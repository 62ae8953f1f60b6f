"""Shared fixtures for the CLI tests: one tiny real base model per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tinymodel import make_tiny_base


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny") / "base")
