"""`guardian export RUN_ID|MODEL_DIR --format gguf`: a trained model as one merged GGUF file.

The adapter is folded into its own base (the one recorded in the model's base.json), and the
tokenizer metadata comes from the GGUF that base was dequantised from, so the file tokenizes
and chats exactly as the base did. Exports go to `<home>/exports/` unless `--out` says where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guardian.config.settings import GuardianConfig
from guardian.config.skills import SkillsFile
from guardian.engine.keys import model_skill
from guardian.engine.report.document import RUN_ID, load_report
from guardian.errors import ConfigError, ModelError, StateError
from guardian.export.gguf import Quant, write_gguf, write_lora_gguf
from guardian.ml.base_model import base_of
from guardian.store.artifacts import ArtifactStore
from guardian.store.state import StateStore


def run_model(home: Path, skills: SkillsFile, rep: dict[str, Any]) -> tuple[str, str, Path]:
    """The model a run trained: its skill, artifact key and dir (which must still exist)."""
    run_id = str(rep["run_id"])
    playbook = skills.playbooks.get(str(rep["playbook"]))
    if playbook is None:
        raise ConfigError(f"playbook '{rep['playbook']}' of run {run_id} is not in skills.yaml")
    skill = model_skill(skills, playbook)
    step = next((s for s in rep.get("steps", []) if s.get("skill") == skill), None)
    if skill is None or step is None:
        raise StateError(f"run {run_id}: produced no model")
    key = str(step["key"])
    model_dir = ArtifactStore(home).path(key)
    if not (model_dir / "adapter").is_dir():
        raise StateError(f"run {run_id}: its model {model_dir} is gone (run it again)")
    return skill, key, model_dir


def model_dir_of(config: GuardianConfig, skills: SkillsFile, target: str) -> tuple[Path, str]:
    """A train output dir and a name for it, from a run id or a path to such a dir."""
    if RUN_ID.fullmatch(target):
        with StateStore(config.home) as store:
            rep = load_report(config.home, target, store)
        return run_model(config.home, skills, rep)[2], f"{rep['repo_name']}-{target}"
    path = Path(target)
    if not (path / "adapter" / "adapter_config.json").is_file():
        raise ModelError(f"{path}: not a run id, nor a model dir (no adapter/adapter_config.json)")
    return path, path.resolve().name


def export_gguf(
    config: GuardianConfig,
    skills: SkillsFile,
    target: str,
    *,
    quant: Quant = "f16",
    out: Path | None = None,
    adapter_only: bool = False,
) -> Path:
    """Merge the model's adapter into its base and write it as a GGUF; returns the file.

    `adapter_only` writes the LoRA adapter alone, as a llama.cpp adapter GGUF for the base's
    own GGUF file (`llama-cli -m BASE.gguf --lora FILE`).
    """
    model_dir, name = model_dir_of(config, skills, target)
    ref = base_of(model_dir, config.home)
    if ref.kind not in ("alias", "gguf"):
        raise ModelError(
            f"{model_dir}: its base '{ref.spec}' is an HF model, not a GGUF: GGUF export takes "
            "the tokenizer metadata from the base's GGUF (train on a .gguf or alias base)"
        )
    kind = "lora-" if adapter_only else ""
    dest = out or config.home / "exports" / f"{name}-{kind}{quant}.gguf"
    if adapter_only:
        return write_lora_gguf(ref.path, model_dir / "adapter", dest, quant=quant, name=name)
    return write_gguf(
        ref.path, Path(ref.source), dest, adapter_dir=model_dir / "adapter", quant=quant, name=name
    )
