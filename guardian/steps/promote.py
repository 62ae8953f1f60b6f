"""Promotion to the `local` target: copy the model into the models dir, record the champion."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import structlog

from guardian.state import StateStore

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
) -> Path:
    """Copy `model_dir` to models_dir/<repo>/<skill>/<run_id> atomically; make it the champion.

    The previous champion's row becomes 'previous' and its files stay, so a rollback is one
    state update.
    """
    dest = models_dir / f"{repo_name}-{repo_id}" / skill / run_id
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{run_id}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    base_file = dest / "base.json"
    base = json.loads(base_file.read_text()).get("spec", "") if base_file.exists() else ""
    store.promote_model(repo_id, skill, run_id, artifact_key, dest, base, metrics)
    log.info("promoted", target="local", path=str(dest), skill=skill)
    return dest
