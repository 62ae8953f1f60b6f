"""Promotion to the `local` target: copy the model into the models dir, record the champion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import structlog

from guardian.core.fsutil import atomic_dir
from guardian.store.artifacts import dir_digest
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


def promote_local(
    *,
    store: StateStore,
    models_dir: Path,
    repo_id: int,
    repo_name: str,
    skill: str,
    run_id: str,
    artifact_key: str,
    model_dir: Path,
    metrics: dict[str, Any],
    override: dict[str, Any] | None = None,
    placement: dict[str, Any] | None = None,
) -> Path:
    """Copy `model_dir` to models_dir/<repo>/<skill>/<run_id> atomically; make it the champion.

    The previous champion's row becomes 'previous' and its files stay, so a rollback is one
    state update. `override` records who forced a promotion past the gate, and why;
    `placement` where else (Ollama) the model was published.
    """
    dest = models_dir / f"{repo_name}-{repo_id}" / skill / run_id
    with atomic_dir(dest) as tmp:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
    base_file = dest / "base.json"
    base = json.loads(base_file.read_text()).get("spec", "") if base_file.exists() else ""
    store.registry.promote(
        repo_id,
        skill,
        run_id,
        artifact_key,
        dest,
        base,
        metrics,
        digest=dir_digest(dest),
        override=override,
        placement=placement,
    )
    log.info("promoted", target="local", path=str(dest), skill=skill)
    return dest
