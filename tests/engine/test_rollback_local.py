"""`guardian rollback` on the local target: champion and previous swap in the registry (and
swap back), a previous model whose files are gone is refused, names resolve by repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guardian.config.settings import GuardianConfig
from guardian.engine.publish import rollback
from guardian.errors import ConfigError, StateError
from guardian.store.state import StateStore


def _promote(store: StateStore, repo_id: int, run: str, root: Path) -> Path:
    path = root / run
    (path / "adapter").mkdir(parents=True)
    store.registry.promote(repo_id, "train-lora", run, f"key-{run}", path, "base", {"probe": 0.5})
    return path


def test_local_rollback_swaps_and_refuses_missing_files(tmp_path: Path) -> None:
    home = Path(os.environ["GUARDIAN_HOME"])
    config = GuardianConfig()
    with StateStore(home) as store:
        (tmp_path / "app").mkdir()
        repo_id = store.db.ensure_repo(tmp_path / "app", "app")
        with pytest.raises(StateError, match="no previous model"):
            _promote(store, repo_id, "r1", tmp_path / "models")
            rollback(config, "app")
        second = _promote(store, repo_id, "r2", tmp_path / "models")
    assert rollback(config, "app")["run_id"] == "r1"
    with StateStore(home) as store:
        assert store.registry.champion(repo_id, "train-lora")["run_id"] == "r1"
        assert store.registry.previous(repo_id, "train-lora")["run_id"] == "r2"
    cli = [sys.executable, "-m", "guardian", "rollback", "app"]
    done = subprocess.run(cli, capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rolled back app: run r2 is in service again")
    listed = subprocess.run(
        [sys.executable, "-m", "guardian", "models"], capture_output=True, text=True
    )
    assert [line.split()[1] for line in listed.stdout.splitlines()] == [
        "champion",
        "previous",
    ]  # newest first: r2 is back

    (tmp_path / "models" / "r1" / "adapter").rmdir()
    (tmp_path / "models" / "r1").rmdir()
    with pytest.raises(StateError, match="files are gone"):
        rollback(config, "app")
    assert second.is_dir()
    with pytest.raises(ConfigError, match="no promoted model by that repo or Ollama name"):
        rollback(config, "nope")
