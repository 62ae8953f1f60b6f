from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guardian.errors import ConfigError, DataError
from guardian.steps.base import StepContext
from guardian.steps.train import SPEC, Params, run, total_steps, train_model
from tests.tinymodel import make_tiny_base, tiny_dataset

FAST = {"learning_rate": 2e-2, "batch_size": 4, "warmup_ratio": 0.0, "dropout": 0.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return make_tiny_base(root / "base"), tiny_dataset(root / "data")


def _ctx(tmp_path: Path, dataset: Path, name: str = "out", home: Path | None = None) -> StepContext:
    out = tmp_path / name
    out.mkdir()
    return StepContext(
        repo=tmp_path, out_dir=out, home=home or tmp_path / "home", inputs={"dataset": dataset}
    )


def _logits(model: Any, ids: list[int]) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_params_validation_and_spec() -> None:
    with pytest.raises(ValidationError, match="max_steps"):
        Params(max_steps=-1)
    with pytest.raises(ValidationError, match="max_len"):
        Params(max_len=16)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Params.model_validate({"learning_rte": 1e-3})
    with pytest.raises(ValidationError, match="method"):
        Params.model_validate({"method": "qlora"})
    assert SPEC.name == "train" and SPEC.params is Params and SPEC.fn is run
    assert SPEC.needs == ("dataset",) and SPEC.provides == "model"


def test_total_steps_from_epochs() -> None:
    assert total_steps(24, Params(max_steps=7)) == 7
    assert total_steps(24, Params(max_steps=0, epochs=2, batch_size=4)) == 12
    assert total_steps(25, Params(max_steps=0, epochs=1, batch_size=4, grad_accum=2)) == 4


def test_dry_run_writes_plan_without_loading_weights(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("dry run loaded model weights")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", forbidden)
    base, data = tiny
    ctx = _ctx(tmp_path, data)
    started = time.monotonic()
    result = run(ctx, Params(base=str(base), dry_run=True, max_len=32, max_steps=0, epochs=2))
    assert time.monotonic() - started < 10
    assert result.metrics == {"dry_run": True, "n_train": 24, "steps": 12}
    assert result.outputs == ["train_plan.json"]
    assert sorted(p.name for p in ctx.out_dir.iterdir()) == ["train_plan.json"]
    plan = json.loads((ctx.out_dir / "train_plan.json").read_text())
    assert plan["n_train"] == 24 and plan["n_val"] == 4 and plan["steps"] == 12
    assert plan["base"]["path"] == str(base.resolve())
    assert plan["params"]["max_len"] == 32
    assert plan["tokens"]["train"]["max"] > 32
    assert plan["tokens"]["train"]["truncated"] == 24


def test_empty_or_bad_train_set(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, _ = tiny
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("")
    (data / "val.jsonl").write_text("")
    with pytest.raises(DataError, match=r"train\.jsonl: training set is empty"):
        run(_ctx(tmp_path, data, "a"), Params(base=str(base), dry_run=True))
    (data / "train.jsonl").write_text('{"input": "q", "output": "a"}\n{"input": "q"}\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2: output: Field required"):
        run(_ctx(tmp_path, data, "b"), Params(base=str(base), dry_run=True))


def test_lora_training_lowers_loss_and_saves_a_loadable_adapter(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from peft import PeftModel

    from guardian.ml.base_model import load_model_and_tokenizer

    base, data = tiny
    ctx = _ctx(tmp_path, data)
    trained = train_model(ctx, Params(base=str(base), max_steps=20, **FAST))
    metrics = trained.result.metrics
    assert metrics["steps"] == 20 and metrics["n_train"] == 24 and metrics["resumed_from"] == 0
    assert metrics["train_loss_last"] < metrics["train_loss_first"] - 1.0
    rows = [json.loads(line) for line in (ctx.out_dir / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows[:-1]] == list(range(1, 21))
    assert set(rows[0]) == {"step", "loss", "lr", "elapsed_s"}
    assert rows[-1] == {"step": 20, "val_loss": metrics["val_loss"]}
    assert metrics["val_loss"] < rows[0]["loss"]
    assert json.loads((ctx.out_dir / "base.json").read_text())["path"] == str(base.resolve())
    assert not list((ctx.home / "checkpoints").glob("*.pt"))

    fresh, tok = load_model_and_tokenizer(base)
    ids = tok("Where is `scan_repo` defined?")["input_ids"]
    before = _logits(fresh, ids)
    loaded = PeftModel.from_pretrained(fresh, str(ctx.out_dir / "adapter"))
    after = _logits(loaded, ids)
    assert not after.allclose(before, atol=1e-3)
    assert after.allclose(_logits(trained.model, ids), atol=1e-5)


def test_pissa_adapter_applies_to_the_unmodified_base(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from peft import PeftModel
    from safetensors.torch import load_file

    from guardian.ml.base_model import load_model_and_tokenizer

    base, data = tiny
    ctx = _ctx(tmp_path, data)
    trained = train_model(ctx, Params(base=str(base), method="pissa", max_steps=8, **FAST))
    assert trained.result.metrics["train_loss_last"] < trained.result.metrics["train_loss_first"]
    original = load_file(str(base / "model.safetensors"))
    key = "model.layers.0.self_attn.q_proj.weight"
    residual = trained.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert not residual.allclose(original[key], atol=1e-4), "PiSSA did not touch the base"
    config = json.loads((ctx.out_dir / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["init_lora_weights"] is True

    fresh, tok = load_model_and_tokenizer(base)
    loaded = PeftModel.from_pretrained(fresh, str(ctx.out_dir / "adapter"))
    ids = tok("Where is `scan_repo` defined? It is in guardian/core.py")["input_ids"]
    assert _logits(loaded, ids).allclose(_logits(trained.model, ids), atol=1e-4)


def test_bad_target_modules(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, data = tiny
    params = Params(base=str(base), max_steps=1, target_modules=["nope_proj"])
    with pytest.raises(ConfigError, match="target_modules"):
        run(_ctx(tmp_path, data), params)


def test_killed_run_resumes_from_checkpoint_and_matches_uninterrupted(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    base, data = tiny
    params = Params(base=str(base), max_steps=8, checkpoint_every=3, **FAST)
    home = tmp_path / "home"

    def crash(step: int) -> None:
        if step == 7:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        train_model(_ctx(tmp_path, data, "first", home), params, on_step=crash)
    (ckpt,) = (home / "checkpoints").glob("*.pt")

    ctx = _ctx(tmp_path, data, "second", home)
    result = run(ctx, params)
    assert result.metrics["resumed_from"] == 6
    assert not ckpt.exists()
    rows = [json.loads(x) for x in (ctx.out_dir / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows[:-1]] == list(range(1, 9))

    clean = _ctx(tmp_path, data, "clean", tmp_path / "home2")
    reference = run(clean, params)
    assert reference.metrics["resumed_from"] == 0
    first = [r["loss"] for r in rows[:-1]][:5]
    assert sum(first) / len(first) == pytest.approx(reference.metrics["train_loss_first"])
    resumed = load_file(str(ctx.out_dir / "adapter" / "adapter_model.safetensors"))
    straight = load_file(str(clean.out_dir / "adapter" / "adapter_model.safetensors"))
    assert resumed.keys() == straight.keys()
    for name, tensor in straight.items():
        assert resumed[name].allclose(tensor, atol=1e-6), name
