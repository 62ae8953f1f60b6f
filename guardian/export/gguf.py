"""GGUF export: a Llama-architecture model, its LoRA adapter folded in, as one f32/f16/q8_0
file written with the `gguf` package's writer (no llama.cpp converter involved).

What llama.cpp expects, and this module writes:
- tensors under GGUF names (`blk.N.attn_q.weight`, ...; `gguf.get_tensor_name_map`), norms
  and other 1-d tensors in F32, the rest in the chosen type (Q8_0 by `gguf.quants`, which
  is bit-exact with ggml); no `output.weight` when embeddings are tied;
- q and k rows permuted for llama.cpp's rotary layout (k with the kv-head count), the
  inverse of what transformers' GGUF loader undoes when it reads a file;
- `llama.*` hyper-parameters from the HF config, and every `tokenizer.*` key (vocabulary,
  merges, special ids, chat template) copied from the GGUF the base was dequantised from,
  so the exported model tokenizes and chats exactly as the base did.
A LoRA adapter is merged as W + (alpha / r) B A (alpha / sqrt(r) with rslora), per target,
or written alone as a llama.cpp adapter GGUF (`write_lora_gguf`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from guardian.core.fsutil import TEMP_SUFFIX
from guardian.errors import ModelError

if TYPE_CHECKING:
    import numpy as np

log = structlog.get_logger(__name__)

Quant = Literal["f32", "f16", "q8_0"]
QUANTS: tuple[Quant, ...] = ("f32", "f16", "q8_0")
_FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}  # gguf.LlamaFileType ALL_F32, MOSTLY_F16, MOSTLY_Q8_0
_COPIED_PREFIXES = ("tokenizer.",)
# what the base model is, carried over: a fine-tune keeps its base's licence and languages
_COPIED_KEYS = ("general.license", "general.languages", "general.basename", "general.size_label")


def permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary row order for a q or k projection with `n_head` heads."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def merged_weights(base_dir: Path, adapter_dir: Path | None) -> dict[str, np.ndarray]:
    """The base model's float32 weights (HF names), with the LoRA adapter folded in."""
    import numpy as np
    from safetensors.numpy import load_file

    files = sorted(base_dir.glob("*.safetensors"))
    if not files:
        raise ModelError(f"{base_dir}: no *.safetensors weights to export")
    weights: dict[str, np.ndarray] = {}
    for file in files:
        weights |= {k: v.astype(np.float32) for k, v in load_file(str(file)).items()}
    if adapter_dir is not None:
        for name, delta in _lora_deltas(adapter_dir):
            if name not in weights:
                raise ModelError(f"{adapter_dir}: adapter targets {name}, absent from the base")
            weights[name] = weights[name] + delta
    return weights


@dataclass(frozen=True)
class _Adapter:
    """A saved peft LoRA adapter: (HF weight name, A, B) per target and its scaling."""

    pairs: list[tuple[str, np.ndarray, np.ndarray]]
    alpha: float
    rslora: bool

    def scale(self, rank: int) -> float:
        """What peft multiplies B A by: alpha / r, or alpha / sqrt(r) with rslora."""
        return self.alpha / (math.sqrt(rank) if self.rslora else rank)

    def b_factor(self, rank: int) -> float:
        """What B must carry so that llama.cpp's alpha / r gives peft's scale."""
        return self.scale(rank) * rank / self.alpha


def _read_adapter(adapter_dir: Path) -> _Adapter:
    from safetensors.numpy import load_file

    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text())
        tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{adapter_dir}: unreadable LoRA adapter ({exc})") from exc
    if config.get("alpha_pattern") or config.get("rank_pattern"):
        raise ModelError(f"{adapter_dir}: per-module alpha/rank patterns are not supported")
    pairs = []
    for key, a in sorted(tensors.items()):
        if ".lora_A." not in key:
            continue
        b = tensors[key.replace(".lora_A.", ".lora_B.")]
        name = key.replace("base_model.model.", "", 1).replace(".lora_A.weight", ".weight")
        pairs.append((name, a.astype("float32"), b.astype("float32")))
    alpha = float(config.get("lora_alpha", 8))
    return _Adapter(pairs, alpha, bool(config.get("use_rslora", False)))


def _lora_deltas(adapter_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Per adapted weight (HF name), the update scale * B A the adapter applies."""
    adapter = _read_adapter(adapter_dir)
    for name, a, b in adapter.pairs:
        yield name, adapter.scale(a.shape[0]) * (b @ a)


def _gguf_name(hf_name: str, name_map: Any) -> str:
    """The GGUF tensor name of an HF weight (`model.layers.0.self_attn.q_proj.weight` ->
    `blk.0.attn_q.weight`)."""
    mapped = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if mapped is None:
        raise ModelError(f"no GGUF name for tensor {hf_name}")
    return str(mapped)


def _tensor(array: np.ndarray, quant: Quant) -> tuple[np.ndarray, Any]:
    """The array as stored, and its GGML type: 1-d tensors (norms) stay F32."""
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    if array.ndim <= 1 or quant == "f32":
        return array.astype(np.float32), GGMLQuantizationType.F32
    if quant == "f16":
        return array.astype(np.float16), GGMLQuantizationType.F16
    return quantize(array.astype(np.float32), GGMLQuantizationType.Q8_0), (
        GGMLQuantizationType.Q8_0
    )


def _hyper_parameters(writer: Any, config: dict[str, Any], quant: Quant) -> None:
    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads", heads)))
    writer.add_rope_dimension_count(int(config.get("head_dim") or hidden // heads))
    rope = config.get("rope_parameters") or {}  # transformers 5 nests rope_theta here
    writer.add_rope_freq_base(float(config.get("rope_theta") or rope.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(_FILE_TYPE[quant])


def _copy_tokenizer(writer: Any, source: Path) -> None:
    """Every `tokenizer.*` key of the source GGUF (and what it says of the base model's
    licence and languages), with its type, into the writer."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(str(source))
    for field in reader.fields.values():
        if not field.name.startswith(_COPIED_PREFIXES) and field.name not in _COPIED_KEYS:
            continue
        kind = field.types[0]
        value = field.contents()
        if kind == GGUFValueType.ARRAY:
            writer.add_key_value(field.name, value, kind, sub_type=field.types[-1])
        else:
            writer.add_key_value(field.name, value, kind)


_REQUIRED = ("num_attention_heads", "hidden_size", "num_hidden_layers", "intermediate_size")


def _config(base_dir: Path) -> dict[str, Any]:
    """The base's HF config, checked for what the GGUF header needs."""
    path = base_dir / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable model config ({exc})") from None
    if config.get("model_type") != "llama":
        kind = config.get("model_type")
        raise ModelError(f"{path}: GGUF export supports llama models, not {kind}")
    missing = [key for key in (*_REQUIRED, "vocab_size") if key not in config]
    if missing:
        raise ModelError(f"{path}: missing {', '.join(missing)}")
    return config


def write_gguf(
    base_dir: Path,
    tokenizer_gguf: Path,
    out: Path,
    *,
    adapter_dir: Path | None = None,
    quant: Quant = "f16",
    name: str = "guardian",
) -> Path:
    """Write the base (with `adapter_dir` merged in) as a GGUF at `out`, atomically."""
    import gguf

    _check_quant(quant, QUANTS)
    config = _config(base_dir)
    weights = merged_weights(base_dir, adapter_dir)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(config["num_hidden_layers"]))

    def fill(writer: Any) -> None:
        writer.add_type("model")
        writer.add_name(name)
        _hyper_parameters(writer, config, quant)
        _copy_tokenizer(writer, tokenizer_gguf)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for hf_name in sorted(weights):
            if hf_name == "lm_head.weight" and config.get("tie_word_embeddings"):
                continue
            data, kind = _tensor(_llama_rows(hf_name, weights[hf_name], config), quant)
            writer.add_tensor(_gguf_name(hf_name, name_map), data, raw_dtype=kind)

    _write(out, fill)
    log.info("gguf written", path=str(out), quant=quant, tensors=len(weights))
    return out


def write_lora_gguf(
    base_dir: Path, adapter_dir: Path, out: Path, *, quant: Quant = "f16", name: str = "guardian"
) -> Path:
    """Write the LoRA adapter alone as a llama.cpp adapter GGUF (`general.type=adapter`).

    It applies to the base's own GGUF (`llama-cli -m BASE.gguf --lora OUT`): A as peft stores
    it, B with the q/k rotary row order; llama.cpp scales by alpha / rank, so an rslora
    adapter's B carries the extra sqrt(rank).
    """
    import gguf

    _check_quant(quant, ("f32", "f16"))
    config = _config(base_dir)
    adapter = _read_adapter(adapter_dir)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(config["num_hidden_layers"]))

    def fill(writer: Any) -> None:
        writer.add_type("adapter")
        writer.add_name(name)
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", adapter.alpha)
        for hf_name, a, b in adapter.pairs:
            target = _gguf_name(hf_name, name_map)
            b = _llama_rows(hf_name, b * adapter.b_factor(a.shape[0]), config)
            for suffix, array in (("lora_a", a), ("lora_b", b)):
                data, kind = _tensor(array, quant)
                writer.add_tensor(f"{target}.{suffix}", data, raw_dtype=kind)

    _write(out, fill)
    log.info("gguf adapter written", path=str(out), quant=quant, pairs=len(adapter.pairs))
    return out


def _check_quant(quant: str, allowed: tuple[str, ...]) -> None:
    if quant not in allowed:
        raise ModelError(f"--quant: expected one of {', '.join(allowed)} (got {quant!r})")


def _llama_rows(hf_name: str, array: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """q and k output rows in llama.cpp's rotary order; other tensors as they are."""
    heads = int(config["num_attention_heads"])
    if hf_name.endswith("q_proj.weight"):
        return permute_rows(array, heads)
    if hf_name.endswith("k_proj.weight"):
        return permute_rows(array, int(config.get("num_key_value_heads", heads)))
    return array


def _write(out: Path, fill: Callable[[Any], None]) -> None:
    """A GGUF at `out` filled by `fill(writer)`, via a temp sibling renamed into place."""
    import gguf

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}{TEMP_SUFFIX}"  # swept if we die
    try:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        fill(writer)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
