"""Trained LoRA adapters on disk: which dirs are train outputs, and loading one onto a base.

A train output dir holds `adapter/` (peft's adapter_config.json plus weights) beside its
base.json. peft is imported inside `load_adapter` only, so `is_model_dir` costs the CLI,
the daemon and the API nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guardian.errors import ModelError

__all__ = ["ADAPTER_WEIGHTS", "adapter_dir", "is_model_dir", "load_adapter"]

ADAPTER = "adapter"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def is_model_dir(path: Path) -> bool:
    """Whether `path` is a train output dir: it holds adapter/adapter_config.json."""
    return (path / ADAPTER / ADAPTER_CONFIG).is_file()


def adapter_dir(model_dir: Path) -> Path:
    """The adapter folder of a train output, checked to hold a config and weights."""
    adapter = model_dir / ADAPTER
    if not is_model_dir(model_dir):
        raise ModelError(f"{adapter}: no {ADAPTER_CONFIG} (is {model_dir} a train output?)")
    if not any((adapter / n).is_file() for n in ADAPTER_WEIGHTS):
        raise ModelError(f"{adapter}: no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    return adapter


def load_adapter(model: Any, adapter: Path, name: str = "default") -> Any:
    """`model` with the adapter folder loaded as `name`: a base is wrapped in a PeftModel, a
    PeftModel gets it as one more named adapter (switch with `set_adapter`)."""
    from peft import PeftModel

    try:
        if isinstance(model, PeftModel):
            model.load_adapter(str(adapter), adapter_name=name)
            return model
        return PeftModel.from_pretrained(model, str(adapter), adapter_name=name)
    except Exception as exc:  # peft on files from disk: any failure means a broken adapter
        raise ModelError(f"cannot load adapter {adapter} ({type(exc).__name__}: {exc})") from exc
