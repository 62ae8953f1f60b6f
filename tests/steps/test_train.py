from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guardian.errors import ConfigError, DataError
from guardian.steps.base import StepContext
from guardian.steps.train import ALL_LINEAR, SPEC, Params, run, total_steps, train_model
from tests.tinymodel import make_tiny_base, tiny_dataset

FAST: dict[str, Any] = {
    "learning_rate": 2e-2,
    "batch_size": 4,
    "warmup_ratio": 0.0,
    "dropout": 0.0,
    "replay_fraction": 0.0,
}


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


def _rows(ctx: StepContext) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (ctx.out_dir / "loss_log.jsonl").read_text().splitlines()]


def _logits(model: Any, ids: list[int]) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def _assert_reloads_as(base: Path, ctx: StepContext, model: Any, text: str, atol: float) -> None:
    """The saved adapter on a fresh base gives the in-memory model's logits on `text`."""
    from peft import PeftModel

    from guardian.ml.base_model import load_model_and_tokenizer

    fresh, tok = load_model_and_tokenizer(base)
    loaded = PeftModel.from_pretrained(fresh, str(ctx.out_dir / "adapter"))
    ids = tok(text)["input_ids"]
    assert _logits(loaded, ids).allclose(_logits(model, ids), atol=atol)


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
    with pytest.raises(ValidationError, match="max_minutes"):
        Params(max_minutes=0)


def test_defaults_train_all_linear_lora_for_epochs_with_early_stopping() -> None:
    p = Params()
    assert p.target_modules == list(ALL_LINEAR) and len(ALL_LINEAR) == 7
    assert (p.r, p.alpha, p.learning_rate) == (16, 32, 1e-3)
    assert (p.max_steps, p.epochs, p.eval_every, p.patience) == (0, 3.0, 0, 2)
    assert p.max_minutes is None


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
    # at max_len 32 the chat template alone overflows, so all 24 prompts are cut; each
    # ~15-token answer still fits beside the prompt's quarter, and nothing is RAFT
    fitting = {"contexts_shrunk": 0, "truncated": 24, "answers_cut": 0}
    # 24 samples and a 10% replay share (2, not generated in a dry run): 26 examples are
    # 7 batches of 4, twice
    expected = {"dry_run": True, "n_train": 24, "n_replay": 2, "steps": 14, **fitting}
    assert result.metrics == expected
    assert result.outputs == ["train_plan.json"]
    assert sorted(p.name for p in ctx.out_dir.iterdir()) == ["train_plan.json"]
    plan = json.loads((ctx.out_dir / "train_plan.json").read_text())
    assert plan["n_train"] == 24 and plan["n_replay"] == 2 and plan["steps"] == 14
    assert plan["n_val"] == 4
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
    rows = _rows(ctx)
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 21))
    assert set(rows[0]) == {"step", "loss", "lr", "elapsed_s", "tokens", "pad_fraction"}
    # the val loss is checked once an epoch (6 steps of 4) and after the last step
    assert [r["step"] for r in rows if "val_loss" in r] == [6, 12, 18, 20]
    assert rows[-1] == {"step": 20, "val_loss": metrics["val_loss"]}
    assert metrics["val_loss"] < rows[0]["loss"]
    assert metrics["best_step"] == 20 and not metrics["stopped_early"]
    assert metrics["epochs_done"] == pytest.approx(80 / 24, abs=1e-3)
    assert metrics["coverage"] == 1.0 and metrics["pad_fraction"] == rows[0]["pad_fraction"] == 0.0
    assert json.loads((ctx.out_dir / "base.json").read_text())["path"] == str(base.resolve())
    # the checkpoint stays until the artifact is committed; the caller discards it then
    assert trained.result.discard == list((ctx.home / "checkpoints").glob("*.pt"))

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
    from safetensors.torch import load_file

    base, data = tiny
    ctx = _ctx(tmp_path, data)
    trained = train_model(ctx, Params(base=str(base), method="pissa", max_steps=8, **FAST))
    assert trained.result.metrics["train_loss_last"] < trained.result.metrics["train_loss_first"]
    original = load_file(str(base / "model.safetensors"))
    key = "model.layers.0.self_attn.q_proj.weight"
    residual = trained.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert not residual.allclose(original[key], atol=1e-4), "PiSSA did not touch the base"
    config = json.loads((ctx.out_dir / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 2 * Params().r == 32
    assert config["init_lora_weights"] is True

    _assert_reloads_as(
        base, ctx, trained.model, "Where is `scan_repo` defined? It is in guardian/core.py", 1e-4
    )


def test_bad_target_modules(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, data = tiny
    params = Params(base=str(base), max_steps=1, target_modules=["nope_proj"])
    with pytest.raises(ConfigError, match="target_modules"):
        run(_ctx(tmp_path, data), params)


def _scripted_val(
    monkeypatch: pytest.MonkeyPatch, script: dict[int, float]
) -> dict[int, dict[str, Any]]:
    """Make the val loss after step s be script[s]; returns the adapter state at each check."""
    from peft import get_peft_model_state_dict

    from guardian.ml import lora

    seen: dict[int, dict[str, Any]] = {}
    current = [0]
    evaluate = lora._Loop.evaluate

    def tracked(self: Any, done: int) -> None:
        current[0] = done
        evaluate(self, done)

    def scripted(model: Any, *args: object) -> float:
        state = get_peft_model_state_dict(model)
        seen[current[0]] = {k: v.detach().clone() for k, v in state.items()}
        return script[current[0]]

    monkeypatch.setattr(lora._Loop, "evaluate", tracked)
    monkeypatch.setattr(lora, "val_loss", scripted)
    return seen


def _saved_adapter(ctx: StepContext) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(ctx.out_dir / "adapter" / "adapter_model.safetensors"))


def test_epochs_by_default_cover_the_data(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, data = tiny
    result = run(_ctx(tmp_path, data), Params(base=str(base), patience=0, **FAST))
    metrics = result.metrics
    assert metrics["steps"] == metrics["steps_planned"] == 18
    assert metrics["epochs_done"] == 3.0 and metrics["coverage"] == 1.0
    assert not metrics["stopped_early"] and not metrics["time_budget_hit"]


def test_early_stopping_keeps_the_best_adapter(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    seen = _scripted_val(monkeypatch, {2: 5.0, 4: 4.0, 6: 4.5, 8: 4.6})
    base, data = tiny
    ctx = _ctx(tmp_path, data)
    params = Params(base=str(base), max_steps=20, eval_every=2, patience=2, **FAST)
    trained = train_model(ctx, params)
    metrics = trained.result.metrics
    assert metrics["stopped_early"] and metrics["steps"] == 8 and metrics["steps_planned"] == 20
    assert metrics["best_step"] == 4 and metrics["val_loss"] == 4.0
    assert metrics["coverage"] == 0.4 and not metrics["time_budget_hit"]
    vals = [(r["step"], r["val_loss"]) for r in _rows(ctx) if "val_loss" in r]
    assert vals == [(2, 5.0), (4, 4.0), (6, 4.5), (8, 4.6)]
    saved = _saved_adapter(ctx)
    assert saved.keys() == seen[4].keys()
    assert all(saved[k].allclose(v) for k, v in seen[4].items())
    assert not all(saved[k].allclose(v) for k, v in seen[8].items())

    _assert_reloads_as(base, ctx, trained.model, "Where is `scan_repo` defined?", 1e-5)


def test_time_budget_stops_after_the_first_step(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    base, data = tiny
    ctx = _ctx(tmp_path, data)
    result = run(ctx, Params(base=str(base), max_minutes=0.0001, **FAST))
    metrics = result.metrics
    assert metrics["time_budget_hit"] and not metrics["stopped_early"]
    assert metrics["steps"] == 1 and metrics["steps_planned"] == 18
    assert metrics["coverage"] == round(4 / 72, 4) and metrics["epochs_done"] == round(4 / 24, 3)
    assert metrics["files_covered"] == 1.0  # all 24 samples are about guardian/core.py
    assert metrics["best_step"] == 1 and metrics["val_loss"] is not None
    assert [r["step"] for r in _rows(ctx)] == [1, 1]
    assert (ctx.out_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_killed_run_resumes_from_checkpoint_and_matches_uninterrupted(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the best val loss comes before the checkpoint, so the resumed run must carry it over
    _scripted_val(monkeypatch, {2: 3.0, 4: 1.0, 6: 2.0, 8: 2.5})
    base, data = tiny
    params = Params(
        base=str(base), max_steps=8, checkpoint_every=3, eval_every=2, patience=5, **FAST
    )
    home = tmp_path / "home"

    def crash(step: int) -> None:
        if step == 7:
            raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        train_model(_ctx(tmp_path, data, "first", home), params, on_step=crash)
    (ckpt,) = (home / "checkpoints").glob("*.pt")

    ctx = _ctx(tmp_path, data, "second", home)
    result = run(ctx, params.model_copy(update={"threads": 1, "max_minutes": 60.0}))
    assert result.metrics["resumed_from"] == 6 and result.metrics["best_step"] == 4
    assert result.discard == [ckpt]
    rows = _rows(ctx)
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 9))

    clean = _ctx(tmp_path, data, "clean", tmp_path / "home2")
    reference = run(clean, params)
    assert reference.metrics["resumed_from"] == 0 and reference.metrics["best_step"] == 4
    assert result.metrics["val_loss"] == reference.metrics["val_loss"] == 1.0

    straight_rows = _rows(clean)
    assert [sorted(r) for r in rows] == [sorted(r) for r in straight_rows]
    for mine, theirs in zip(rows, straight_rows, strict=True):
        for key in set(mine) - {"elapsed_s"}:
            assert mine[key] == pytest.approx(theirs[key], abs=1e-6), (mine["step"], key)
    resumed, straight = _saved_adapter(ctx), _saved_adapter(clean)
    assert resumed.keys() == straight.keys()
    for name, tensor in straight.items():
        assert resumed[name].allclose(tensor, atol=1e-6), name
