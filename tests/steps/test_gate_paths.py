"""The gate's paths on real evaluations of tiny real models: every decision and its reasons.

Each case trains tiny adapters, scores them with the evaluate step (real perplexities, real
guard-set perplexities, real paired bootstrap intervals) and judges the metrics with the
gate, as the runner does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from guardian.config.skills import GateConfig
from guardian.core.jsonl import write_jsonl
from guardian.evaluation.gate import Decision, decide
from guardian.evaluation.guard import guard_samples
from guardian.steps import evaluate
from guardian.steps.base import StepContext
from tests.steps.test_evaluate import _train
from tests.tinymodel import make_tiny_base, tiny_dataset

EVAL = evaluate.Params(
    em_items=0, batch_size=8, probe_per_kind=0, guard_items=16, code_items=0, ask_per_kind=0
)
GATE = {"primary": "perplexity", "min_margin": 0.05, "require_significant": True, "answers": None}


def _guard_data(root: Path) -> Path:
    """A dataset of the very guard items the evaluation scores: a model trained on it knows
    the guard set by heart (and nothing of the repo)."""
    picked = [guard_samples()[i] for i in evaluate.spread(len(guard_samples()), 16)]
    out = root / "guard-data"
    for split in ("train", "val", "test"):
        write_jsonl(out / f"{split}.jsonl", picked)
    return out


def _jittered(root: Path, model: Path, scale: float) -> Path:
    """A copy of a trained adapter with seeded noise on its LoRA weights: a challenger that
    differs from `model` only by noise."""
    import torch
    from safetensors.torch import load_file, save_file

    out = root / f"{model.name}-jitter"
    shutil.copytree(model, out)
    weights = out / "adapter" / "adapter_model.safetensors"
    state = load_file(str(weights))
    gen = torch.Generator().manual_seed(0)
    noisy = {
        k: v + scale * v.abs().mean() * torch.randn(v.shape, generator=gen)
        for k, v in state.items()
    }
    save_file(noisy, str(weights))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate")
    base = make_tiny_base(root / "base")
    data = tiny_dataset(root / "data")
    good = _train(root, base, data, "good", 20)
    return {
        "root": root,
        "data": data,
        "good": good,
        "weak": _train(root, base, data, "weak", 2),
        "guard-champion": _train(root, base, _guard_data(root), "guard-champion", 30),
        "jitter": _jittered(root, good, 0.02),
    }


def _judge(
    world: dict[str, Path], tmp_path: Path, model: str, baseline: str | None, **gate: Any
) -> tuple[Decision, dict[str, Any]]:
    inputs = {"model": world[model], "dataset": world["data"]}
    if baseline is not None:
        inputs["baseline"] = world[baseline]
    out = tmp_path / f"eval-{model}-{baseline}"
    out.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=out, home=world["root"] / "home", inputs=inputs)
    evaluate.run(ctx, EVAL)
    rep = json.loads((out / "metrics.json").read_text())
    kind = rep["baseline_kind"]
    config = GateConfig(**{**GATE, **gate})
    decision = decide(rep["challenger"], rep["baseline"], config, kind, rep["difference_ci"])
    return decision, rep


def _failed(decision: Decision) -> list[str]:
    return [c.name for c in decision.checks if not c.passed]


def test_a_better_challenger_passes(world: dict[str, Path], tmp_path: Path) -> None:
    decision, rep = _judge(world, tmp_path, "good", None, max_guard_rise=1.0)
    assert decision.passed, decision.reasons
    assert decision.reasons[0].startswith("PASS perplexity") and "vs base" in decision.reasons[0]
    assert "(require_significant)" in decision.reasons[0]
    lo, hi = rep["difference_ci"]["perplexity"]
    assert hi < 0  # surely better across the interval, not just on average


def test_a_worse_challenger_is_refused(world: dict[str, Path], tmp_path: Path) -> None:
    decision, rep = _judge(world, tmp_path, "weak", "good")
    assert _failed(decision) == ["margin"]
    assert rep["challenger"]["perplexity"] > rep["baseline"]["perplexity"]
    assert (
        decision.reasons[0].startswith("FAIL perplexity") and "vs champion" in decision.reasons[0]
    )


def test_better_on_the_repo_but_forgetting_the_guard_set_is_refused(
    world: dict[str, Path], tmp_path: Path
) -> None:
    decision, rep = _judge(world, tmp_path, "good", "guard-champion", max_guard_rise=0.5)
    chal, champ = rep["challenger"], rep["baseline"]
    assert chal["perplexity"] < champ["perplexity"]  # it knows the repo better...
    assert chal["guard_perplexity"] > 1.5 * champ["guard_perplexity"]  # ...and forgot the rest
    assert _failed(decision) == ["guard"]
    assert decision.reasons[-1].startswith("FAIL guard_perplexity")


def test_a_gain_inside_the_noise_is_refused_with_require_significant(
    world: dict[str, Path], tmp_path: Path
) -> None:
    decision, rep = _judge(world, tmp_path, "jitter", "good", min_margin=0.0, margin="absolute")
    chal, champ = rep["challenger"], rep["baseline"]
    lo, hi = rep["difference_ci"]["perplexity"]
    assert lo < 0 < hi  # the two differ only by noise
    assert _failed(decision) == ["margin"]
    # judge whichever is ahead on average as the challenger: the plain gate takes its gain...
    if chal["perplexity"] > champ["perplexity"]:
        chal, champ, lo, hi = champ, chal, -hi, -lo
    plain = GateConfig(primary="perplexity", min_margin=0.0, margin="absolute", answers=None)
    assert decide(chal, champ, plain, "champion").passed
    # ...require_significant sees that the interval of the difference reaches the wrong side
    strict = GateConfig(**{**GATE, "min_margin": 0.0, "margin": "absolute"})
    refused = decide(chal, champ, strict, "champion", {"perplexity": [lo, hi]})
    assert _failed(refused) == ["margin"]
    assert "95% interval of the difference" in refused.reasons[0]
