"""`guardian export RUN_ID|MODEL_DIR --format gguf`: a trained model as one merged GGUF file.

The model is resolved first (engine/resolve.py); this module takes its dir and a name.

The adapter is folded into its own base (the one recorded in the model's base.json), and the
tokenizer metadata comes from the GGUF that base was dequantised from, so the file tokenizes
and chats exactly as the base did. Exports go to `<home>/exports/` unless `--out` says where.
"""

from __future__ import annotations

from pathlib import Path

from guardian.config.settings import GuardianConfig
from guardian.errors import ModelError
from guardian.export.gguf import Quant, write_gguf, write_lora_gguf
from guardian.ml.base_model import base_of


def export_gguf(
    config: GuardianConfig,
    model_dir: Path,
    name: str,
    *,
    quant: Quant = "f16",
    out: Path | None = None,
    adapter_only: bool = False,
) -> Path:
    """Merge the model's adapter into its base and write it as a GGUF; returns the file.

    `adapter_only` writes the LoRA adapter alone, as a llama.cpp adapter GGUF for the base's
    own GGUF file (`llama-cli -m BASE.gguf --lora FILE`).
    """
    ref = base_of(model_dir, config.home)
    if ref.kind not in ("alias", "gguf"):
        raise ModelError(
            f"{model_dir}: its base '{ref.spec}' is an HF model, not a GGUF: GGUF export takes "
            "the tokenizer metadata from the base's GGUF (train on a .gguf or alias base)"
        )
    kind = "lora-" if adapter_only else ""
    dest = out or config.home / "exports" / f"{name}-{kind}{quant}.gguf"
    if adapter_only:
        return write_lora_gguf(ref.path, model_dir / "adapter", dest, quant=quant, name=name)
    return write_gguf(
        ref.path, Path(ref.source), dest, adapter_dir=model_dir / "adapter", quant=quant, name=name
    )
