"""Shared test set-up: an isolated state dir per test, offline Hugging Face, repo root cwd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def guardian_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own $GUARDIAN_HOME and runs from the repo root."""
    home = tmp_path / "guardian-home"
    monkeypatch.setenv("GUARDIAN_HOME", str(home))
    monkeypatch.delenv("GUARDIAN_CONFIG", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.chdir(ROOT)
    return home


@pytest.fixture(autouse=True)
def _fresh_logging() -> object:
    """Undo a test's structlog set-up: a CliRunner's captured stderr is closed afterwards."""
    import structlog

    yield
    structlog.reset_defaults()
