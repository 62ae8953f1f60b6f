from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from guardian.core import versions
from guardian.engine import keys
from guardian.steps import get_step


def _train_key(home: Path, **params: object) -> str:
    spec = get_step("train")
    p = spec.params.model_validate({"base": "smollm2-135m", **params})
    return keys.step_key(spec, p, {"dataset": "d1"}, "c1", home)


def test_threads_leave_the_train_key_but_output_shaping_params_do_not(tmp_path: Path) -> None:
    assert _train_key(tmp_path, threads=1) == _train_key(tmp_path, threads=2)
    assert _train_key(tmp_path) == _train_key(tmp_path, threads=4)
    assert _train_key(tmp_path, r=8) != _train_key(tmp_path, r=16)
    assert _train_key(tmp_path, max_minutes=5) != _train_key(tmp_path, max_minutes=6)


def test_library_versions_join_the_keys_of_the_steps_they_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _train_key(tmp_path)
    mine = get_step("mine")
    mine_params = mine.params()
    mine_before = keys.step_key(mine, mine_params, {}, "c1", tmp_path)
    real = metadata.version

    def fake(name: str) -> str:
        return "9.9.9" if name == "torch" else real(name)

    monkeypatch.setattr(versions.metadata, "version", fake)
    assert _train_key(tmp_path) != before
    # torch does not shape mining: its key is unchanged
    assert keys.step_key(mine, mine_params, {}, "c1", tmp_path) == mine_before
    assert versions.distribution_versions(["torch", "no-such-dist-xyz"]) == {
        "torch": "9.9.9",
        "no-such-dist-xyz": "absent",
    }
    assert mine.unkeyed == {"workers"} and "tree-sitter-python" in mine.libraries
