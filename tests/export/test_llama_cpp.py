"""llama.cpp runs our GGUF exports as the model that was trained.

The real SmolLM2-135M gets an adapter from the train step (6 steps on the guard set less its
held-out items: every greedy answer changes), merged and written f16 and q8_0 by
guardian/export/gguf.py and loaded by llama-cpp-python. On 50 held-out guard items (spread
over the shipped set and prompted as the evaluate step prompts them) llama.cpp must match the
torch model (base + adapter through peft): answer perplexity within 2% (f16) / 5% (q8_0),
and the greedy answers of 16 new tokens equal as text on at least 80% of the items (f16).
llama.cpp's Q8_0 kernels also round the activations to 8 bits, so near-ties flip and greedy
answers drift apart as they grow (our q8_0 file is byte-identical to llama.cpp's own
quantizer's): q8_0 must agree on the first 4 new tokens of 80% of the items, and on whole
answers of 60%.

Marked `llama_cpp`: `.ci/run` runs it (CI installs llama-cpp-python); deselect it locally with
`-m "not llama_cpp"`. Without the package it fails, it does not skip.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from guardian.export.gguf import write_gguf, write_lora_gguf
from guardian.export.parity import (
    compare,
    gguf_answer_nll,
    gguf_side,
    gguf_tokens,
    load_gguf,
    perplexity,
    torch_answer_nll,
    torch_side,
)

pytestmark = pytest.mark.llama_cpp

ITEMS, NEW_TOKENS, FIRST = 50, 16, 4
TOLERANCE = {"f16": 0.02, "q8_0": 0.05}
# minimum share of equal greedy answers: (whole answers, first FIRST tokens)
AGREEMENT = {"f16": (0.8, 0.8), "q8_0": (0.6, 0.8)}
SAMPLE = (
    "<|im_start|>user\nWhat does `zip(*rows)` return?\n\n    def f(x):  # naïve → 数据 🙂\n"
    "        return [y ** 2 for y in x]\n<|im_end|>\n<|im_start|>assistant\nIt transposes."
)


def _trained(root: Path, held_out: list[int]) -> tuple[Path, Path]:
    """A model dir from the train step on the guard set less the held-out items; its home."""
    from guardian.core.jsonl import write_jsonl
    from guardian.evaluation.guard import guard_samples
    from guardian.steps import train
    from guardian.steps.base import StepContext

    skip = set(held_out)
    rest = [s for i, s in enumerate(guard_samples()) if i not in skip]
    data, model, home = root / "data", root / "model", root / "home"
    data.mkdir()
    model.mkdir()
    write_jsonl(data / "train.jsonl", rest[4:])
    write_jsonl(data / "val.jsonl", rest[:4])
    write_jsonl(data / "test.jsonl", [])
    ctx = StepContext(repo=root, out_dir=model, home=home, inputs={"dataset": data})
    # No replay: this measures export fidelity of one fixed adapter, which the thresholds
    # below were set on; replay would only add base answers to a guard-set adapter.
    params = train.Params(
        max_steps=6, batch_size=8, val_max_items=4, checkpoint_every=0, replay_fraction=0.0
    )
    train.run(ctx, params)
    return model, home


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both exports of a trained model, the held-out items, the torch model's scores on them
    and the plain base's NLL on the first ten."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail(
            "llama-cpp-python is not installed: pip install llama-cpp-python==0.3.36 "
            '(or deselect these tests with -m "not llama_cpp")',
            pytrace=False,
        )
    from peft import PeftModel

    from guardian.evaluation.guard import guard_samples
    from guardian.ml.base_model import base_of, load_model_and_tokenizer
    from guardian.ml.scoring import spread

    root = tmp_path_factory.mktemp("llama-cpp")
    every = guard_samples()
    held_out = spread(len(every), ITEMS)
    model_dir, home = _trained(root, held_out)
    ref = base_of(model_dir, home)
    adapter = model_dir / "adapter"
    files = {
        quant: write_gguf(
            ref.path, Path(ref.source), root / f"{quant}.gguf", adapter_dir=adapter, quant=quant
        )
        for quant in TOLERANCE
    }
    base, tok = load_model_and_tokenizer(ref.path)
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    samples = [every[i] for i in held_out]
    reference = torch_side(model, tok, samples, NEW_TOKENS, batch_size=ITEMS)
    with model.disable_adapter():
        plain = torch_answer_nll(model, tok, samples[:10], 10)
    files["base"] = write_gguf(ref.path, Path(ref.source), root / "base.gguf", quant="f16")
    files["lora"] = write_lora_gguf(ref.path, adapter, root / "lora.gguf", quant="f16")
    return {"files": files, "tok": tok, "samples": samples, "ref": reference, "plain": plain}


def test_both_exports_load_and_tokenize_as_the_hf_tokenizer(setup: dict[str, Any]) -> None:
    tok = setup["tok"]
    want = tok(SAMPLE, add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids("<|im_start|>") in want  # special tokens are parsed
    for quant in TOLERANCE:
        path = setup["files"][quant]
        llm = load_gguf(path)
        assert gguf_tokens(llm, SAMPLE) == want, quant
        assert llm.n_vocab() == len(tok) and llm.token_eos() == tok.eos_token_id, quant


@pytest.mark.parametrize("quant", list(TOLERANCE))
def test_llama_cpp_scores_the_export_as_torch_scores_the_trained_model(
    setup: dict[str, Any], quant: str
) -> None:
    ref, tok = setup["ref"], setup["tok"]
    moved = perplexity(ref.nll[:10]) / perplexity(setup["plain"]) - 1.0
    assert abs(moved) > 0.2, moved  # the adapter matters, so matching it means it was merged
    got = gguf_side(setup["files"][quant], tok, setup["samples"], NEW_TOKENS)
    result = compare(ref, got, tok, prefixes=(FIRST,))
    print(quant, result)
    assert result["items"] == ITEMS and result["token_mismatches"] == 0
    assert abs(result["ppl_rel_diff"]) <= TOLERANCE[quant], result
    whole, first = AGREEMENT[quant]
    assert result["agreement"] >= whole and result[f"agreement_first_{FIRST}"] >= first, result


def test_the_adapter_gguf_on_the_base_gguf_scores_as_the_merged_export(
    setup: dict[str, Any],
) -> None:
    """`--adapter-only`: llama.cpp applies our adapter GGUF to the base GGUF at load time
    (`--lora`) and scores the held-out items as the merged f16 export does."""
    from guardian.export.parity import item_texts

    files, tok = setup["files"], setup["tok"]
    pairs = [item_texts(tok, s)[:2] for s in setup["samples"][:10]]
    merged = gguf_answer_nll(load_gguf(files["f16"]), pairs)
    applied = gguf_answer_nll(load_gguf(files["base"], lora=files["lora"]), pairs)
    bare = gguf_answer_nll(load_gguf(files["base"]), pairs)
    assert abs(perplexity(applied) / perplexity(merged) - 1.0) <= 0.01
    assert abs(perplexity(bare) / perplexity(merged) - 1.0) > 0.2  # the adapter took effect
