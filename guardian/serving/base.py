"""The promotion-target Protocol and the records that cross it (DESIGN.md §6).

A target is a place a promoted model is served from: the local models dir, an Ollama server.
Each one promotes a Release, undoes its own placement on rollback, lists what it holds and
says whether it can take a model now. Targets are registered by the config's
`promote.target` name in guardian/serving/targets.py.
"""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from guardian.store.records import Override, Placement

__all__ = ["Health", "Placement", "PromotionTarget", "Release"]


class Release(BaseModel):
    """A trained model about to be promoted, whose it is, and who forced it past the gate."""

    model_config = ConfigDict(frozen=True)

    repo_id: int
    repo_name: str
    skill: str
    run_id: str
    artifact_key: str
    model_dir: Path
    metrics: dict[str, Any]
    override: Override | None = None


class Health(BaseModel):
    """Whether a target can take a model now, and one line saying why (or why not)."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    detail: str


class PromotionTarget(Protocol):
    """A place promoted models are served from; guardian/serving/targets.py names each one."""

    def promote(self, release: Release) -> Placement:
        """Put `release` in service here; raises TargetUnavailable with nothing changed when
        the target cannot take it."""
        ...

    def rollback(self, current: Placement, previous: Placement | None) -> None:
        """Put `previous` back in service here in place of `current` (both as this target
        recorded them; None when the previous model never came here); refuses, changing
        nothing, when that is not possible."""
        ...

    def list(self) -> builtins.list[Placement]:
        """Every model this target holds now."""
        ...

    def health(self) -> Health:
        """Whether this target can take a model now; never raises for an unreachable target."""
        ...
