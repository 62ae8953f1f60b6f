from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Sample
from guardian.errors import DataError, StepError
from guardian.ml.prompting import EncodedExample, encode_example
from guardian.steps import evaluate, train
from guardian.steps.base import StepContext
from tests.tinymodel import make_tiny_base, tiny_dataset

FAST = {"learning_rate": 2e-2, "batch_size": 4, "warmup_ratio": 0.0, "dropout": 0.0}
EVAL = evaluate.Params(
    em_items=3, max_new_tokens=12, batch_size=4, probe_per_kind=0, guard_items=6, ask_per_kind=0
)


def _train(root: Path, base: Path, data: Path, name: str, steps: int) -> Path:
    out = root / name
    out.mkdir()
    ctx = StepContext(repo=root, out_dir=out, home=root / "home", inputs={"dataset": data})
    train.run(ctx, train.Params(base=str(base), max_steps=steps, **FAST))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    base = make_tiny_base(root / "base")
    data = tiny_dataset(root / "data")
    return {
        "root": root,
        "base": base,
        "data": data,
        "challenger": _train(root, base, data, "challenger", 20),
        "champion": _train(root, base, data, "champion", 3),
    }


def _evaluate(
    world: dict[str, Path], tmp_path: Path, baseline: Path | None = None, **inputs: Path
) -> tuple[dict[str, Any], StepContext]:
    wired = {"model": world["challenger"], "dataset": world["data"], **inputs}
    if baseline is not None:
        wired["baseline"] = baseline
    out = tmp_path / "eval"
    out.mkdir(parents=True)
    ctx = StepContext(repo=tmp_path, out_dir=out, home=world["root"] / "home", inputs=wired)
    result = evaluate.run(ctx, EVAL)
    assert result.outputs == ["metrics.json", "items.jsonl"]
    return result.metrics, ctx


def test_params_and_spec() -> None:
    with pytest.raises(ValidationError, match="split"):
        evaluate.Params.model_validate({"split": "train"})
    with pytest.raises(ValidationError, match="em_items"):
        evaluate.Params(em_items=-1)
    spec = evaluate.SPEC
    assert spec.needs == ("model", "dataset", "chunks") and spec.optional_needs == ("baseline",)
    assert spec.provides == "metrics" and spec.params is evaluate.Params


def test_trained_challenger_beats_untrained_base(world: dict[str, Path], tmp_path: Path) -> None:
    metrics, ctx = _evaluate(world, tmp_path)
    assert metrics["n"] == 8
    assert metrics["challenger_perplexity"] < metrics["baseline_perplexity"] / 10
    report = json.loads((ctx.out_dir / "metrics.json").read_text())
    assert report["baseline_kind"] == "base" and report["split"] == "test"
    assert report["baseline"]["model"] == f"base:{world['base']}"
    assert report["challenger"]["model"] == "challenger"
    for role in ("challenger", "baseline"):
        summary = report[role]
        assert set(summary) == {
            "model", "dataset", "n", "perplexity", "exact_match", "token_f1", "mean_nll",
            "answer_tokens", "ci", "guard_perplexity",
        }  # fmt: skip
        assert summary["perplexity"] == pytest.approx(math.exp(summary["mean_nll"]))
        assert 0.0 <= summary["exact_match"] <= summary["token_f1"] <= 1.0
        assert set(summary["ci"]) == {"perplexity", "exact_match", "token_f1", "guard_perplexity"}
        lo, hi = summary["ci"]["perplexity"]
        assert lo <= summary["perplexity"] <= hi
    lo, hi = report["difference_ci"]["perplexity"]
    gap = report["challenger"]["perplexity"] - report["baseline"]["perplexity"]
    assert lo <= gap <= hi < 0  # the trained challenger is surely better
    items = [json.loads(x) for x in (ctx.out_dir / "items.jsonl").read_text().splitlines()]
    assert [it["index"] for it in items] == list(range(8))
    assert all(it["path"] == "guardian/core.py" for it in items)
    with_em = [it for it in items if "challenger_em" in it]
    assert len(with_em) == 3 and [it["index"] for it in with_em] == evaluate.spread(8, 3) == [
        0,
        2,
        5,
    ]
    assert isinstance(with_em[0]["challenger_answer"], str) and with_em[0]["reference"]
    for role in ("challenger", "baseline"):
        f1 = [it[f"{role}_f1"] for it in with_em]
        assert report[role]["token_f1"] == pytest.approx(sum(f1) / 3, abs=1e-3)
    assert sum(it["answer_tokens"] for it in items) == report["challenger"]["answer_tokens"]
    weighted = sum(it["challenger_nll"] * it["answer_tokens"] for it in items)
    assert weighted / report["challenger"]["answer_tokens"] == pytest.approx(
        report["challenger"]["mean_nll"]
    )


def test_probe_asks_both_models_the_same_questions(world: dict[str, Path], tmp_path: Path) -> None:
    from guardian.core.jsonl import write_jsonl
    from tests.data.test_probe import chunks

    mined = tmp_path / "chunks"
    write_jsonl(mined / "chunks.jsonl", chunks())
    wired = {"model": world["challenger"], "dataset": world["data"], "chunks": mined}
    out = tmp_path / "eval"
    out.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=out, home=world["root"] / "home", inputs=wired)
    params = EVAL.model_copy(
        update={
            "probe_per_kind": 2,
            "probe_max_new_tokens": 8,
            "ask_per_kind": 1,
            "ask_max_new_tokens": 12,
        }
    )
    result = evaluate.run(ctx, params)
    assert result.outputs == [
        "metrics.json",
        "items.jsonl",
        "probe_items.jsonl",
        "answer_items.jsonl",
    ]
    report = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(x) for x in (out / "probe_items.jsonl").read_text().splitlines()]
    assert len(rows) == report["probe"]["challenger"]["n"] == 10  # 5 kinds x 2
    assert not any(r["seen"] for r in rows)  # the tiny dataset trains on other files
    for role in ("challenger", "baseline"):
        for mode in ("closed", "open"):
            marks = [r[f"{role}_{mode}_correct"] for r in rows]
            assert all(isinstance(r[f"{role}_{mode}_answer"], str) for r in rows)
            assert report[role][f"probe_{mode}"] == round(sum(marks) / len(marks), 4)
            assert report[role][f"probe_{mode}_seen"] is None
            cuts = [r[f"{role}_{mode}_cut"] for r in rows]
            assert report["probe"][role][mode]["cut"] == sum(cuts)
    recall = report["probe"]["challenger"]["retrieval_recall"]
    assert recall == round(sum(r["retrieved"] for r in rows) / len(rows), 4) and recall >= 0.8
    assert result.metrics["challenger_probe_open"] == report["challenger"]["probe_open"]
    asked = [json.loads(x) for x in (out / "answer_items.jsonl").read_text().splitlines()]
    assert asked and len({r["kind"] for r in asked}) >= 3  # one question per kind it can ask
    for role in ("challenger", "baseline"):
        for mode in ("closed", "open"):
            marks = [r[f"{role}_{mode}_score"]["score"] for r in asked]
            assert report["answers"][role][mode]["n"] == len(asked)
            assert report[role][f"answers_{mode}"] == pytest.approx(sum(marks) / len(marks))
            assert f"answers_{mode}" in report["difference_ci"]
    items = [json.loads(x) for x in (out / "items.jsonl").read_text().splitlines()]
    for role in ("challenger", "baseline"):
        # every generated answer is judged: 3 test-split ones, 10 closed- and 10 open-book
        flags = [r[f"{role}_{m}_hallucination"] for r in rows for m in ("closed", "open")]
        assert all(f is None or isinstance(f, str) for f in flags)
        judged = flags + [it.get(f"{role}_hallucination") for it in items if f"{role}_em" in it]
        invented = sum(f is not None for f in judged)
        assert len(judged) == 23
        assert report[role]["hallucination_rate"] == pytest.approx(invented / 23)
        assert {"probe_open", "probe_closed", "hallucination_rate"} <= set(report[role]["ci"])
    assert "probe_open" in report["difference_ci"]


def test_code_items_get_codebleu_and_syntax_validity(
    world: dict[str, Path], tmp_path: Path
) -> None:
    from guardian.core.jsonl import write_jsonl
    from guardian.evaluation.code import code_bleu, extract_code
    from tests.data.test_probe import chunks

    mined, data = tmp_path / "chunks", tmp_path / "data"
    every = chunks()
    write_jsonl(mined / "chunks.jsonl", every)
    shutil.copytree(world["data"], data)
    fns = [c for c in every if c.kind == "function"][:2]
    asks = [
        Sample(
            input=f"Write `{fn.qualname}`.\n\nSignature:\n```python\n{fn.signature}\n```",
            output=f"```python\n{fn.code.split(chr(10), 1)[1]}\n```",
            metadata={"chunk_id": fn.id, "question_type": "complete", "path": fn.path},
        )
        for fn in fns
    ]
    test = list(read_jsonl(data / "test.jsonl", Sample))
    write_jsonl(data / "test.jsonl", [*test, *asks])
    wired = {"model": world["challenger"], "dataset": data, "chunks": mined}
    out = tmp_path / "eval"
    out.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=out, home=world["root"] / "home", inputs=wired)
    result = evaluate.run(ctx, EVAL.model_copy(update={"code_items": 4}))
    assert result.outputs[-1] == "code_items.jsonl"
    report = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(x) for x in (out / "code_items.jsonl").read_text().splitlines()]
    assert [r["qualname"] for r in rows] == [fn.qualname for fn in fns]
    for role in ("challenger", "baseline"):
        scores = []
        for fn, row, ask in zip(fns, rows, asks, strict=True):
            assert row["reference"] == ask.output
            body = fn.code.split("\n", 1)[1].strip()
            scores.append(code_bleu(extract_code(row[f"{role}_answer"]), body, "python"))
            assert row[f"{role}_codebleu"] == pytest.approx(scores[-1])
        assert report[role]["codebleu"] == pytest.approx(sum(scores) / 2)
        valid = [float(r[f"{role}_syntax_valid"]) for r in rows]
        assert report[role]["syntax_valid_rate"] == sum(valid) / 2
        assert {"codebleu", "syntax_valid_rate"} <= set(report[role]["ci"])
    assert result.metrics["challenger_codebleu"] == report["challenger"]["codebleu"]


def test_perplexity_is_over_answer_tokens_only(world: dict[str, Path], tmp_path: Path) -> None:
    from peft import PeftModel

    from guardian.ml.base_model import load_model_and_tokenizer

    metrics, ctx = _evaluate(world, tmp_path)
    report = json.loads((ctx.out_dir / "metrics.json").read_text())
    model, tok = load_model_and_tokenizer(world["base"])
    model = PeftModel.from_pretrained(model, str(world["challenger"] / "adapter")).eval()
    samples = list(read_jsonl(world["data"] / "test.jsonl", Sample))
    masked = [encode_example(tok, s, EVAL.max_len) for s in samples]
    unmasked = [
        EncodedExample(ex.input_ids, list(ex.input_ids), 0, ex.full_len, ex.truncated)
        for ex in masked
    ]
    pad = tok.pad_token_id
    m = evaluate.answer_nll(model, masked, 3, pad)
    u = evaluate.answer_nll(model, unmasked, 3, pad)
    m_tokens = sum(n for _, n in m)
    assert (
        m_tokens == sum(ex.answer_tokens for ex in masked) == report["challenger"]["answer_tokens"]
    )
    assert sum(n for _, n in u) == sum(len(ex.input_ids) - 1 for ex in masked)
    masked_ppl = math.exp(sum(s for s, _ in m) / m_tokens)
    unmasked_ppl = math.exp(sum(s for s, _ in u) / sum(n for _, n in u))
    assert masked_ppl == pytest.approx(metrics["challenger_perplexity"], rel=1e-4)
    assert abs(math.log(masked_ppl) - math.log(unmasked_ppl)) > 0.5


def test_champion_baseline(world: dict[str, Path], tmp_path: Path) -> None:
    base_metrics, _ = _evaluate(world, tmp_path / "a")
    metrics, ctx = _evaluate(world, tmp_path / "b", baseline=world["champion"])
    report = json.loads((ctx.out_dir / "metrics.json").read_text())
    assert report["baseline_kind"] == "champion" and report["baseline"]["model"] == "champion"
    assert metrics["challenger_perplexity"] == pytest.approx(base_metrics["challenger_perplexity"])
    assert (
        metrics["challenger_perplexity"]
        < metrics["baseline_perplexity"]
        < base_metrics["baseline_perplexity"]
    )
    same, _ = _evaluate(world, tmp_path / "c", baseline=world["challenger"])
    assert same["baseline_perplexity"] == pytest.approx(same["challenger_perplexity"], rel=1e-6)
    assert same["baseline_exact_match"] == same["challenger_exact_match"]


def test_empty_split_foreign_and_broken_baseline(world: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(world["data"], data)
    (data / "test.jsonl").write_text("")
    with pytest.raises(DataError, match=r"test\.jsonl: test split is empty"):
        _evaluate(world, tmp_path / "a", dataset=data)

    foreign = tmp_path / "foreign"
    shutil.copytree(world["champion"], foreign)
    record = json.loads((foreign / "base.json").read_text())
    record["fingerprint"] = "f" * 64
    (foreign / "base.json").write_text(json.dumps(record))
    metrics, ctx = _evaluate(world, tmp_path / "b", baseline=foreign)
    report = json.loads((ctx.out_dir / "metrics.json").read_text())
    # scored on its own base and tokenizer: answers compare, perplexities do not
    assert report["baseline_kind"] == "champion" and "another base" in report["baseline_note"]
    assert report["baseline"]["perplexity"] is None and metrics["baseline_perplexity"] is None
    assert report["baseline"]["exact_match"] is not None
    assert "perplexity" not in report["difference_ci"]
    assert "exact_match" in report["baseline"]["ci"]
    with pytest.raises(StepError, match="no adapter weights"):
        shutil.rmtree(foreign / "adapter")
        (foreign / "adapter").mkdir()
        (foreign / "adapter" / "adapter_config.json").write_text("{}")
        _evaluate(world, tmp_path / "c", baseline=foreign)


@pytest.mark.slow
def test_real_smollm2_end_to_end(tmp_path: Path) -> None:
    from guardian.ml.base_model import resolve_base

    home = tmp_path / "home"
    data = tiny_dataset(tmp_path / "data", n_train=8, n_val=2, n_test=4)
    params = train.Params(max_steps=3, batch_size=2, max_len=128, checkpoint_every=0)

    dry = tmp_path / "dry"
    dry.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=dry, home=home, inputs={"dataset": data})
    assert train.run(ctx, params.model_copy(update={"dry_run": True})).metrics["steps"] == 3
    assert not resolve_base("smollm2-135m", home, convert=False).ready

    ref = resolve_base("smollm2-135m", home)
    config = json.loads((ref.path / "config.json").read_text())
    assert "quantization_config" not in config and config["vocab_size"] == 49152
    assert (ref.path / "model.safetensors").is_file()

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=model_dir, home=home, inputs={"dataset": data})
    trained = train.run(ctx, params)
    assert math.isfinite(trained.metrics["train_loss_last"])
    assert (model_dir / "adapter" / "adapter_model.safetensors").is_file()

    from guardian.core.jsonl import write_jsonl
    from tests.data.test_probe import chunks

    mined = tmp_path / "chunks"
    write_jsonl(mined / "chunks.jsonl", chunks())
    out = tmp_path / "eval"
    out.mkdir()
    inputs = {"model": model_dir, "dataset": data, "chunks": mined}
    ctx = StepContext(repo=tmp_path, out_dir=out, home=home, inputs=inputs)
    params_eval = evaluate.Params(
        em_items=2, max_new_tokens=8, batch_size=4, probe_per_kind=1, probe_max_new_tokens=16
    )
    metrics = evaluate.run(ctx, params_eval).metrics
    assert metrics["n"] == 4
    assert 0.0 <= metrics["challenger_probe_open"] <= 1.0
    assert math.isfinite(metrics["challenger_perplexity"]) and metrics["challenger_perplexity"] > 1
    assert math.isfinite(metrics["baseline_perplexity"]) and metrics["baseline_perplexity"] > 1


def test_spread_is_even_and_deterministic() -> None:
    assert evaluate.spread(10, 0) == list(range(10))
    assert evaluate.spread(3, 5) == [0, 1, 2]
    assert evaluate.spread(10, 4) == [0, 2, 5, 7]
    assert len(set(evaluate.spread(1000, 64))) == 64


def test_guard_perplexity_is_over_the_chosen_guard_answers(
    world: dict[str, Path], tmp_path: Path
) -> None:
    from peft import PeftModel

    from guardian.evaluation.guard import guard_samples
    from guardian.ml.base_model import load_model_and_tokenizer

    metrics, ctx = _evaluate(world, tmp_path)
    report = json.loads((ctx.out_dir / "metrics.json").read_text())
    every = guard_samples()
    assert len(every) >= 200 and {s.metadata["part"] for s in every} == {
        "python", "general", "code"
    }  # fmt: skip
    chosen = [every[i] for i in evaluate.spread(len(every), EVAL.guard_items)]
    model, tok = load_model_and_tokenizer(world["base"])
    expected = {}
    for role, adapter in (("challenger", world["challenger"] / "adapter"), ("baseline", None)):
        net = PeftModel.from_pretrained(model, str(adapter)).eval() if adapter else model
        nll = evaluate.answer_nll(
            net, [encode_example(tok, s, EVAL.max_len) for s in chosen], 2, tok.pad_token_id
        )
        expected[role] = math.exp(sum(t for t, _ in nll) / sum(n for _, n in nll))
        if adapter:
            model = net.unload()
    for role in ("challenger", "baseline"):
        assert report[role]["guard_perplexity"] == pytest.approx(expected[role], rel=1e-4)
    assert metrics["challenger_guard_perplexity"] == report["challenger"]["guard_perplexity"]
