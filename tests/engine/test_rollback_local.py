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
    assert rollback(config, "app").run_id == "r1"
    with StateStore(home) as store:
        assert store.registry.champion(repo_id, "train-lora").run_id == "r1"
        assert store.registry.previous(repo_id, "train-lora").run_id == "r2"
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


def test_rollback_undoes_the_target_the_champion_was_published_to(tmp_path: Path) -> None:
    """The recorded placement picks the target, not today's config: a champion published to
    Ollama swaps back there even after the config moved to `local`."""
    from guardian.serving.ollama import OllamaServer
    from tests.serving.ollama_double import OllamaDouble
    from tests.serving.test_ollama_target import FMT, small_gguf

    home = Path(os.environ["GUARDIAN_HOME"])
    config = GuardianConfig()
    assert config.promote.target == "local"
    with OllamaDouble() as double, StateStore(home) as store:
        (tmp_path / "app").mkdir()
        repo_id = store.db.ensure_repo(tmp_path / "app", "app")
        server = OllamaServer(double.host)
        for seed, run in enumerate(["r1", "r2"], 1):
            gguf = small_gguf(tmp_path / f"{run}.gguf", seed)
            published = server.publish(gguf, "app-model", run, FMT).placement()
            path = tmp_path / "models" / run
            path.mkdir(parents=True)
            store.registry.promote(
                repo_id,
                "train-lora",
                run,
                f"key-{run}",
                path,
                "base",
                {},
                placement=published,
            )
        first, second = (server.tags("app-model")[run] for run in ("r1", "r2"))
        assert double.digest_of("app-model:latest") == second

        assert rollback(config, "app-model").run_id == "r1"
        assert double.digest_of("app-model:latest") == first
        assert double.digest_of("app-model:prev") == second
        assert store.registry.champion(repo_id, "train-lora").run_id == "r1"

        store.registry.promote(repo_id, "train-lora", "r3", "key-r3", tmp_path, "base", {})
        store.registry.promote(
            repo_id,
            "train-lora",
            "r4",
            "key-r4",
            tmp_path,
            "base",
            {},
            placement=published,
        )  # r4 is in Ollama, the run before it never was
        with pytest.raises(StateError, match="never published to Ollama"):
            rollback(config, "app")
        assert store.registry.champion(repo_id, "train-lora").run_id == "r4"
        assert double.digest_of("app-model:latest") == first
