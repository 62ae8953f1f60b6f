"""Train output dirs are recognised without torch; adapters load, stack, or fail as ModelError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from guardian.errors import ModelError
from guardian.ml.adapters import adapter_dir, is_model_dir, load_adapter

ROOT = Path(__file__).resolve().parents[2]


def test_is_model_dir_needs_the_adapter_config_file(tmp_path: Path) -> None:
    model = tmp_path / "model"
    assert not is_model_dir(model)
    (model / "adapter").mkdir(parents=True)
    assert not is_model_dir(model)
    (model / "adapter" / "adapter_config.json").mkdir()
    assert not is_model_dir(model)
    (model / "adapter" / "adapter_config.json").rmdir()
    (model / "adapter" / "adapter_config.json").write_text("{}")
    assert is_model_dir(model)
    assert not is_model_dir(model / "adapter")


def test_adapter_dir_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no adapter_config.json \(is .* a train output\?\)"):
        adapter_dir(tmp_path)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="no adapter weights"):
        adapter_dir(tmp_path)
    (tmp_path / "adapter" / "adapter_model.bin").write_bytes(b"x")
    assert adapter_dir(tmp_path) == tmp_path / "adapter"


def test_importing_the_predicate_loads_no_torch() -> None:
    code = (
        "import sys\nimport guardian.ml.adapters\n"
        "print(' '.join(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []


def _tiny_llama() -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def _saved_adapter(out: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"]))
    torch.manual_seed(seed)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param)
    model.save_pretrained(str(out))
    return out


def test_load_adapter_wraps_a_base_then_stacks_a_named_second(tmp_path: Path) -> None:
    from peft import PeftModel

    first = _saved_adapter(tmp_path / "a", seed=1)
    second = _saved_adapter(tmp_path / "b", seed=2)
    model = load_adapter(_tiny_llama(), first, "one")
    assert isinstance(model, PeftModel) and set(model.peft_config) == {"one"}
    assert load_adapter(model, second, "two") is model
    assert set(model.peft_config) == {"one", "two"}
    weights = {
        n: p for n, p in model.named_parameters() if "q_proj.lora_B" in n and "layers.0" in n
    }
    one, two = (next(p for n, p in weights.items() if f".{k}." in n) for k in ("one", "two"))
    assert not bool((one == two).all()), "the second adapter's own weights were not loaded"


def test_a_broken_adapter_is_a_model_error(tmp_path: Path) -> None:
    broken = tmp_path / "adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{}")
    (broken / "adapter_model.safetensors").write_bytes(b"junk")
    with pytest.raises(ModelError, match=f"cannot load adapter {broken} "):
        load_adapter(_tiny_llama(), broken)
