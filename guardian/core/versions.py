"""Installed versions of distributions, for cache keys that must change when a library does."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

__all__ = ["distribution_versions"]


def distribution_versions(names: Iterable[str], missing: str = "absent") -> dict[str, str]:
    """Installed version of each distribution, `missing` for one that is not installed."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = missing
    return out
