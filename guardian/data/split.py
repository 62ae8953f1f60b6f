"""Which split (train/val/test) each file of a repo belongs to."""

from __future__ import annotations

import hashlib


def split_files(
    paths: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Assign each file to a split by a seeded sha256 order; every non-zero split gets a file.

    With fewer than three files everything goes to train.
    """
    files = sorted(set(paths), key=lambda p: (hashlib.sha256(f"{seed}:{p}".encode()).digest(), p))
    n = len(files)
    if n < 3:
        return dict.fromkeys(files, "train")
    n_test = max(round(n * test_fraction), 1 if test_fraction > 0 else 0)
    n_val = max(round(n * val_fraction), 1 if val_fraction > 0 else 0)
    while n_test + n_val > n - 1:
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    assignment: dict[str, str] = {}
    for i, path in enumerate(files):
        assignment[path] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return assignment
