"""The two models an evaluation compares, loaded once: challenger and baseline.

The challenger is a peft adapter on its base. The baseline is the champion's adapter on the
same base (a second named adapter, switched in place), or the untrained base itself (the
adapter disabled) for a repo's first model. A champion trained on another base is loaded on
its own base with its own tokenizer: it answers the same questions, so the tokenizer-free
metrics (probe, exact match, F1, hallucination) still compare the two, but its perplexity
counts other tokens and is not reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardian.errors import StepError

__all__ = ["ADAPTER_WEIGHTS", "Role", "adapter_dir", "load_roles"]

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class Role:
    """One compared model: its name in reports, how to switch it on, and its tokenizer."""

    name: str  # "challenger" or "baseline"
    label: str  # the model dir's name, or base:<spec>
    model: Any
    tok: Any
    activate: Callable[[], AbstractContextManager[None]]
    same_tokens: bool = True  # False: another tokenizer, so no comparable perplexity


def adapter_dir(model_dir: Path) -> Path:
    """The adapter folder of a train output, checked to hold a config and weights."""
    adapter = model_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise StepError(f"{adapter}: no adapter_config.json (is {model_dir} a train output?)")
    if not any((adapter / n).is_file() for n in ADAPTER_WEIGHTS):
        raise StepError(f"{adapter}: no adapter weights ({' or '.join(ADAPTER_WEIGHTS)})")
    return adapter


def _peft(base: Any, adapter: Path, name: str) -> Any:
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(base, str(adapter), adapter_name=name)
    except Exception as exc:  # peft on files from disk: any failure means a broken adapter
        raise StepError(f"cannot load adapter {adapter} ({type(exc).__name__}: {exc})") from exc


def _switch(model: Any, name: str) -> Callable[[], AbstractContextManager[None]]:
    @contextlib.contextmanager
    def on() -> Iterator[None]:
        model.set_adapter(name)
        yield

    return on


def load_roles(
    challenger_dir: Path, baseline_dir: Path | None, home: Path, seed: int
) -> tuple[Role, Role]:
    """Load (challenger, baseline); see the module docstring for what the baseline is."""
    import torch

    from guardian.ml.base_model import base_of, base_record, load_model_and_tokenizer

    challenger_adapter = adapter_dir(challenger_dir)
    champion_adapter = adapter_dir(baseline_dir) if baseline_dir is not None else None
    foreign = baseline_dir is not None and (
        base_record(baseline_dir).fingerprint != base_record(challenger_dir).fingerprint
    )
    ref = base_of(challenger_dir, home)
    torch.manual_seed(seed)
    base, tok = load_model_and_tokenizer(ref.path)
    model = _peft(base, challenger_adapter, CHALLENGER).eval()
    challenger = Role("challenger", challenger_dir.name, model, tok, _switch(model, CHALLENGER))
    if baseline_dir is None or champion_adapter is None:
        return challenger, Role("baseline", f"base:{ref.spec}", model, tok, model.disable_adapter)
    if not foreign:
        try:
            model.load_adapter(str(champion_adapter), adapter_name=CHAMPION)
        except Exception as exc:  # as in _peft
            raise StepError(
                f"cannot load adapter {champion_adapter} ({type(exc).__name__}: {exc})"
            ) from exc
        return challenger, Role("baseline", baseline_dir.name, model, tok, _switch(model, CHAMPION))
    other = base_of(baseline_dir, home)
    other_base, other_tok = load_model_and_tokenizer(other.path)
    champ = _peft(other_base, champion_adapter, CHAMPION).eval()
    return challenger, Role(
        "baseline", baseline_dir.name, champ, other_tok, contextlib.nullcontext, same_tokens=False
    )
