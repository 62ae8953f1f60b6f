"""The explicit step registry: name -> StepSpec. skills.yaml may also name `module:function`."""

from __future__ import annotations

import importlib

from guardian.errors import ConfigError
from guardian.steps.base import StepContext, StepParams, StepResult, StepSpec

__all__ = ["StepContext", "StepParams", "StepResult", "StepSpec", "get_step", "step_names"]

_BUILTIN_MODULES = ("mine", "synthesize", "validate", "train", "evaluate")


def _builtin() -> dict[str, StepSpec]:  # type: ignore[type-arg]
    specs: dict[str, StepSpec] = {}  # type: ignore[type-arg]
    for mod_name in _BUILTIN_MODULES:
        mod = importlib.import_module(f"guardian.steps.{mod_name}")
        spec = mod.SPEC
        specs[spec.name] = spec
    return specs


def step_names() -> list[str]:
    """Names of the built-in steps, in pipeline order."""
    return list(_builtin())


def get_step(ref: str) -> StepSpec:  # type: ignore[type-arg]
    """Resolve a built-in step name or a `module:attr` reference to a user StepSpec."""
    builtin = _builtin()
    if ref in builtin:
        return builtin[ref]
    if ":" in ref:
        mod_name, _, attr = ref.partition(":")
        try:
            obj = getattr(importlib.import_module(mod_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"step '{ref}': cannot import ({exc})") from exc
        if not isinstance(obj, StepSpec):
            raise ConfigError(f"step '{ref}': is not a guardian StepSpec")
        return obj
    known = ", ".join(sorted(builtin))
    raise ConfigError(f"unknown step '{ref}' (known: {known}, or module:attr)")
