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

from guardian.errors import ModelError, StepError
from guardian.ml import adapters

__all__ = ["Role", "load_roles"]

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


@contextlib.contextmanager
def _as_step_error() -> Iterator[None]:
    """A missing or broken adapter is this step's failure, reported as a StepError."""
    try:
        yield
    except ModelError as exc:
        raise StepError(str(exc)) from exc


def _adapter_dir(model_dir: Path) -> Path:
    with _as_step_error():
        return adapters.adapter_dir(model_dir)


def _load(model: Any, adapter: Path, name: str) -> Any:
    with _as_step_error():
        return adapters.load_adapter(model, adapter, name)


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

    challenger_adapter = _adapter_dir(challenger_dir)
    champion_adapter = _adapter_dir(baseline_dir) if baseline_dir is not None else None
    foreign = baseline_dir is not None and (
        base_record(baseline_dir).fingerprint != base_record(challenger_dir).fingerprint
    )
    ref = base_of(challenger_dir, home)
    torch.manual_seed(seed)
    base, tok = load_model_and_tokenizer(ref.path)
    model = _load(base, challenger_adapter, CHALLENGER).eval()
    challenger = Role("challenger", challenger_dir.name, model, tok, _switch(model, CHALLENGER))
    if baseline_dir is None or champion_adapter is None:
        return challenger, Role("baseline", f"base:{ref.spec}", model, tok, model.disable_adapter)
    if not foreign:
        _load(model, champion_adapter, CHAMPION)
        return challenger, Role("baseline", baseline_dir.name, model, tok, _switch(model, CHAMPION))
    other = base_of(baseline_dir, home)
    other_base, other_tok = load_model_and_tokenizer(other.path)
    champ = _load(other_base, champion_adapter, CHAMPION).eval()
    return challenger, Role(
        "baseline", baseline_dir.name, champ, other_tok, contextlib.nullcontext, same_tokens=False
    )
