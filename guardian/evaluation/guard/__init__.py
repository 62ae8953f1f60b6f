"""The guard set: general questions shipped with the package, about no user's repo.

Its answer-token perplexity must not rise much after fine-tuning: a model that learnt the
repo but forgot Python's built-ins, general facts and how to write a small function is
refused (the gate's `max_guard_rise`). The set is fixed (`guard.jsonl`, written once by
`scripts/make_guard_set.py`); its digest joins the evaluate step's cache key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Sample

__all__ = ["GUARD_FILE", "guard_digest", "guard_samples"]

GUARD_FILE = Path(__file__).with_name("guard.jsonl")


def guard_samples() -> list[Sample]:
    """Every item of the shipped guard set, in file order."""
    return list(read_jsonl(GUARD_FILE, Sample))


def guard_digest() -> str:
    """sha256 of the guard set file, so a changed set re-runs evaluation."""
    return hashlib.sha256(GUARD_FILE.read_bytes()).hexdigest()
