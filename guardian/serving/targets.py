"""The promotion targets by the name the config's `promote.target` gives them (DESIGN.md §6).

`none` is not a target: it turns automatic promotion off (the runner checks it), and a
promotion by hand still lands in the local models dir.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from guardian.config.settings import GuardianConfig
from guardian.core.registry import Registry
from guardian.serving.base import PromotionTarget
from guardian.serving.local import LOCAL, LocalTarget
from guardian.serving.ollama import OLLAMA, GgufFor, OllamaTarget
from guardian.store.state import StateStore


@dataclass(frozen=True)
class TargetNeeds:
    """What a target is built from: the config, the open state store and, for a target that
    publishes a GGUF, the engine's export of one (serving cannot import the exporter)."""

    config: GuardianConfig
    store: StateStore
    gguf_for: GgufFor | None = None


TargetFactory = Callable[[TargetNeeds], PromotionTarget]


def _local(needs: TargetNeeds) -> LocalTarget:
    return LocalTarget(needs.store, needs.config.models_dir)


def _ollama(needs: TargetNeeds) -> OllamaTarget:
    settings = needs.config.promote.ollama
    return OllamaTarget(
        needs.config.promote.ollama_host(),
        needs.gguf_for,
        timeout=settings.timeout_seconds,
        pattern=settings.name,
    )


TARGETS: Registry[TargetFactory] = Registry("promote.target")
TARGETS.add(LOCAL, _local)
TARGETS.add(OLLAMA, _ollama)


def build_target(name: str, needs: TargetNeeds) -> PromotionTarget:
    """The target registered as `name`; an unknown name is a ConfigError naming the field."""
    return TARGETS.get(name)(needs)
