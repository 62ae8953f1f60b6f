"""Which split (train/val/test) each file of a repo belongs to, stable across commits."""

from __future__ import annotations

import hashlib
from collections import Counter

__all__ = ["file_position", "split_files", "split_of"]


def file_position(path: str, seed: int) -> float:
    """Where a file falls in [0, 1): a seeded hash of its path, the same at every commit."""
    digest = hashlib.sha256(f"{seed}:{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(path: str, val_fraction: float, test_fraction: float, seed: int) -> str:
    """A file's split from its position alone: test below `test_fraction`, then val, then train.

    So a file never moves between splits as the repo grows or shrinks, and a champion's
    training files never turn up in a later challenger's test set.
    """
    u = file_position(path, seed)
    return "test" if u < test_fraction else "val" if u < test_fraction + val_fraction else "train"


def split_files(
    paths: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Each file's `split_of`; with fewer than three files everything goes to train.

    A small repo can leave a needed split empty by chance (train always, val/test when
    their fraction is non-zero): it then borrows, from a split holding several files, the
    file placed nearest its range. Only such borrowed files can change split later, when a
    new file takes their place.
    """
    files = sorted(set(paths))
    if len(files) < 3:
        return dict.fromkeys(files, "train")
    ranges = {
        "test": (0.0, test_fraction),
        "val": (test_fraction, test_fraction + val_fraction),
        "train": (test_fraction + val_fraction, 1.0),
    }
    assignment = {p: split_of(p, val_fraction, test_fraction, seed) for p in files}
    for split in ("train", "test", "val"):
        lo, hi = ranges[split]
        if hi <= lo or split in assignment.values():
            continue
        counts = Counter(assignment.values())
        donors = [p for p in files if counts[assignment[p]] > 1]
        if donors:
            u = {p: file_position(p, seed) for p in donors}
            lent = min(donors, key=lambda p: (max(lo - u[p], u[p] - hi, 0.0), p))
            assignment[lent] = split
    return assignment
