"""Promotion targets behind one Protocol: the registry by `promote.target` name, and the
local models dir and the Ollama double each driven through `PromotionTarget` alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from guardian.config.settings import GuardianConfig
from guardian.core.registry import Registry
from guardian.engine.publish import publish
from guardian.errors import ConfigError, GuardianError
from guardian.serving.base import Placement, PromotionTarget, Release
from guardian.serving.targets import TARGETS, TargetNeeds, build_target
from guardian.steps import load_skills
from guardian.store.state import StateStore
from tests.serving.ollama_double import OllamaDouble
from tests.serving.test_ollama_target import small_gguf


def _config(
    tmp_path: Path, host: str = "http://127.0.0.1:9", target: str = "local"
) -> GuardianConfig:
    promote = {"target": target, "models_dir": str(tmp_path / "models"), "ollama": {"host": host}}
    return GuardianConfig(promote=promote)


def _release(tmp_path: Path, repo_id: int, run: str) -> Release:
    model = tmp_path / "runs" / run
    (model / "adapter").mkdir(parents=True)
    (model / "adapter" / "adapter_config.json").write_text(f'{{"run": "{run}"}}')
    return Release(
        repo_id=repo_id,
        repo_name="demo",
        skill="train-lora",
        run_id=run,
        artifact_key=f"key-{run}",
        model_dir=model,
        metrics={"probe": 0.5},
    )


@pytest.fixture()
def store(guardian_home: Path) -> Iterator[StateStore]:
    with StateStore(guardian_home) as opened:
        yield opened


def test_the_registry_refuses_an_unknown_name_naming_the_field(
    tmp_path: Path, store: StateStore
) -> None:
    assert TARGETS.names() == ["local", "ollama"]
    needs = TargetNeeds(_config(tmp_path), store)
    with pytest.raises(ConfigError) as err:
        build_target("vllm", needs)
    assert str(err.value) == "promote.target: unknown name 'vllm' (known: local, ollama)"
    formats: Registry[int] = Registry("export.format")
    formats.add("gguf", 1)
    with pytest.raises(ValueError, match="registered twice"):
        formats.add("gguf", 2)
    with pytest.raises(ConfigError, match=r"^export\.format: unknown name 'onnx' \(known: gguf\)$"):
        formats.get("onnx")

    config = _config(tmp_path)  # a name that slipped past config validation reaches publish
    config = config.model_copy(
        update={"promote": config.promote.model_copy(update={"target": "x"})}
    )
    repo_id = store.db.ensure_repo(tmp_path, "demo")
    with pytest.raises(ConfigError, match=r"^promote\.target: unknown name 'x'"):
        publish(config, store, load_skills(config.skills_path), _release(tmp_path, repo_id, "r1"))
    assert store.registry.models() == [] and not (tmp_path / "models").exists()


def test_each_target_answers_health(tmp_path: Path, store: StateStore) -> None:
    (tmp_path / "file").write_text("not a dir")
    fine = build_target("local", TargetNeeds(_config(tmp_path), store)).health()
    assert fine.ok and str(tmp_path / "models") in fine.detail
    blocked = _config(tmp_path / "file")  # models dir would be <tmp>/file/models
    sick = build_target("local", TargetNeeds(blocked, store)).health()
    assert not sick.ok and "is not a dir" in sick.detail
    with OllamaDouble() as double:
        ollama = build_target("ollama", TargetNeeds(_config(tmp_path, double.host), store))
        up = ollama.health()
        assert up.ok and up.detail == f"Ollama {double.version} at {double.host}"
        double.stop()
        down = ollama.health()
    assert not down.ok and "not reachable" in down.detail


@pytest.mark.parametrize("name", ["local", "ollama"])
def test_promote_list_rollback_through_the_protocol(
    tmp_path: Path, store: StateStore, name: str
) -> None:
    repo_id = store.db.ensure_repo(tmp_path, "demo")
    runs = {"r1": 1, "r2": 2}

    def gguf_for(release: Release) -> Path:
        return small_gguf(tmp_path / f"{release.run_id}.gguf", runs[release.run_id])

    with OllamaDouble() as double:
        config = _config(tmp_path, double.host, name)
        target: PromotionTarget = build_target(name, TargetNeeds(config, store, gguf_for))
        assert target.health().ok
        first = target.promote(_release(tmp_path, repo_id, "r1"))
        second = target.promote(_release(tmp_path, repo_id, "r2"))
        assert (first.target, second.target) == (name, name)
        assert first.digest and second.digest and first.digest != second.digest
        held = {(p.name, p.tag) for p in target.list()}
        assert {(first.name, first.tag), (second.name, second.tag)} <= held
        before = _listed(target)

        unknown = first.model_copy(update={"name": f"{first.name}-gone", "digest": "sha256:0"})
        with pytest.raises(GuardianError):
            target.rollback(second, unknown)
        with pytest.raises(GuardianError):
            target.rollback(second, None)
        assert _listed(target) == before
        target.rollback(second, first)
        assert {(p.name, p.tag) for p in target.list()} == held  # nothing removed
        if name == "ollama":  # the served tag now points at the first model again
            assert double.digest_of(f"{first.name}:latest") == first.digest
            assert double.digest_of(f"{first.name}:prev") == second.digest


def _listed(target: PromotionTarget) -> set[tuple[str, str, str]]:
    return {(p.name, p.tag, p.digest) for p in target.list()}


def test_a_placement_records_what_the_registry_stored_before() -> None:
    ollama = Placement(
        target="ollama", host="http://h", name="demo", tag="r1", digest="sha256:a", blob="sha256:b"
    )
    assert ollama.record() == {
        "target": "ollama",
        "host": "http://h",
        "name": "demo",
        "tag": "r1",
        "digest": "sha256:a",
        "blob": "sha256:b",
    }
    assert Placement.model_validate(ollama.record()) == ollama
    assert Placement(target="local", name="/m/r1").record() == {"target": "local", "name": "/m/r1"}
