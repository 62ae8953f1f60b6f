"""Paired bootstrap intervals: how sure a metric, and the challenger's lead, are of themselves.

Both models are scored on the same items, so one resample of item indices serves both: the
interval of the difference (challenger - baseline) is then the paired one, far narrower than
two independent intervals would suggest. Every metric here is a weighted mean of per-item
values, optionally passed through `exp` (token-weighted mean NLL -> perplexity; weight 1 for
accuracies). Percentile intervals with a fixed seed, so a report re-renders identically.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np


__all__ = ["Interval", "PairedItems", "paired_intervals", "point"]

Interval = tuple[float, float]


@dataclass(frozen=True)
class PairedItems:
    """Per-item values of one metric for both models (same items, same order)."""

    challenger: Sequence[float]
    baseline: Sequence[float]
    weights: Sequence[float] | None = None
    transform: Literal["identity", "exp"] = "identity"

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(challenger, baseline, weights) as float arrays; items with a missing value weigh 0."""
        import numpy as np

        chal = np.asarray(self.challenger, dtype=float)
        base = np.asarray(self.baseline, dtype=float)
        if chal.shape != base.shape:
            raise ValueError(f"paired items differ in length: {chal.shape} vs {base.shape}")
        weights = (
            np.ones_like(chal) if self.weights is None else np.asarray(self.weights, dtype=float)
        )
        usable = np.isfinite(chal) & np.isfinite(base) & (weights > 0)
        zero = np.zeros_like(chal)
        return (
            np.where(usable, chal, zero),
            np.where(usable, base, zero),
            np.where(usable, weights, zero),
        )


def _stat(values: np.ndarray, weights: np.ndarray, transform: str) -> np.ndarray:
    """Weighted mean along the last axis (NaN where all weights are 0), then the transform."""
    import numpy as np

    total = weights.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (values * weights).sum(axis=-1) / total
    mean = np.where(total > 0, mean, np.nan)
    return np.exp(mean) if transform == "exp" else mean


def point(items: PairedItems) -> tuple[float, float]:
    """The metric itself for (challenger, baseline) on all items."""
    chal, base, weights = items.arrays()
    return (
        float(_stat(chal, weights, items.transform)),
        float(_stat(base, weights, items.transform)),
    )


def _bounds(draws: np.ndarray, level: float) -> Interval | None:
    import numpy as np

    finite = draws[np.isfinite(draws)]
    if finite.size < len(draws) * 0.9:  # too many empty resamples to trust the interval
        return None
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(finite, [tail, 1.0 - tail])
    return float(lo), float(hi)


def paired_intervals(
    metrics: Mapping[str, PairedItems],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, dict[str, Interval]]:
    """Intervals per metric for `challenger`, `baseline` and `difference` (challenger - baseline).

    A metric with fewer than two usable items, or whose resamples are mostly empty, gets no
    interval: a gate that needs one then fails closed.
    """
    import numpy as np

    out: dict[str, dict[str, Interval]] = {"challenger": {}, "baseline": {}, "difference": {}}
    rng = np.random.default_rng(seed)
    for name in sorted(metrics):
        items = metrics[name]
        chal, base, weights = items.arrays()
        if int((weights > 0).sum()) < 2:
            continue
        idx = rng.integers(0, len(weights), size=(resamples, len(weights)))
        c_draws = _stat(chal[idx], weights[idx], items.transform)
        b_draws = _stat(base[idx], weights[idx], items.transform)
        for role, draws in (
            ("challenger", c_draws),
            ("baseline", b_draws),
            ("difference", c_draws - b_draws),
        ):
            bounds = _bounds(draws, level)
            if bounds is not None and all(math.isfinite(b) for b in bounds):
                out[role][name] = bounds
    return out
