"""Source mining: the language registry over tree-sitter specs, one module per language family."""

from __future__ import annotations

from functools import lru_cache
from pathlib import PurePosixPath

from guardian.mining.core import LanguageSpec, Unit, extract_units

__all__ = ["LanguageSpec", "Unit", "extract_units", "languages", "spec_for_path"]


@lru_cache(maxsize=1)
def _registry() -> dict[str, LanguageSpec]:
    from guardian.mining import python

    specs = (python.SPEC,)
    return {spec.name: spec for spec in specs}


def languages() -> dict[str, LanguageSpec]:
    """Every supported language by name; a new language is one module plus one line here."""
    return dict(_registry())


@lru_cache(maxsize=1)
def _by_extension() -> dict[str, LanguageSpec]:
    return {ext: spec for spec in _registry().values() for ext in spec.extensions}


def spec_for_path(path: str) -> LanguageSpec | None:
    """The spec whose extensions match the path's suffix (case-sensitive), or None."""
    return _by_extension().get(PurePosixPath(path).suffix)
