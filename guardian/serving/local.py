"""The `local` promotion target: the models dir, and the champion record in the state registry.

Every promotion ends here, whatever the configured target: the model is copied to
<models_dir>/<repo>-<id>/<skill>/<run> and recorded as its repo+skill's champion (the next
run's baseline, and what `guardian ask` and `guardian serve` answer with).
"""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import structlog

from guardian.core.fsutil import atomic_dir
from guardian.errors import StateError
from guardian.serving.base import Health, Placement, Release
from guardian.store.artifacts import dir_digest
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)

LOCAL = "local"


class LocalTarget:
    """Promoted models as dirs under `models_dir`; the registry says which one is champion."""

    def __init__(self, store: StateStore, models_dir: Path) -> None:
        self.store = store
        self.models_dir = models_dir

    def promote(self, release: Release, elsewhere: Placement | None = None) -> Placement:
        """Copy the model into the models dir atomically, then make it the champion.

        The previous champion's row becomes 'previous' and its files stay, so a rollback is
        one state update. `elsewhere` is where another target (Ollama) already published it.
        """
        dest = self.models_dir / f"{release.repo_name}-{release.repo_id}" / release.skill
        dest = dest / release.run_id
        with atomic_dir(dest) as tmp:
            shutil.copytree(release.model_dir, tmp, dirs_exist_ok=True)
        base_file = dest / "base.json"
        base = json.loads(base_file.read_text()).get("spec", "") if base_file.exists() else ""
        digest = dir_digest(dest)
        self.store.registry.promote(
            release.repo_id,
            release.skill,
            release.run_id,
            release.artifact_key,
            dest,
            base,
            release.metrics,
            digest=digest,
            override=release.override,
            placement=elsewhere,
        )
        log.info("promoted", target=LOCAL, path=str(dest), skill=release.skill)
        return Placement(target=LOCAL, name=str(dest), tag=release.run_id, digest=digest)

    def rollback(self, current: Placement, previous: Placement | None) -> None:
        """Check the previous model's files are still there: every version stays in the
        models dir, and which one is served follows the champion record the caller swaps."""
        if previous is None:
            raise StateError("the previous model was never copied into the models dir")
        if not Path(previous.name).is_dir():
            raise StateError(
                f"run {previous.tag}: the previous model's files are gone ({previous.name})"
            )

    def list(self) -> builtins.list[Placement]:
        """Every model dir under the models dir (<repo>-<id>/<skill>/<run>), unhashed."""
        if not self.models_dir.is_dir():
            return []
        return [
            Placement(target=LOCAL, name=str(path), tag=path.name)
            for path in sorted(self.models_dir.glob("*/*/*"))
            if path.is_dir() and not any(p.startswith(".") for p in path.parts[-3:])
        ]

    def health(self) -> Health:
        """Whether the models dir exists or can be made (its nearest existing parent is a dir)."""
        probe = self.models_dir
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            return Health(ok=False, detail=f"models dir {self.models_dir}: {probe} is not a dir")
        return Health(ok=True, detail=f"models dir {self.models_dir}")
