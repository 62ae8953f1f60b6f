"""Source mining: the language registry over tree-sitter specs, one module per language family."""

from __future__ import annotations

from functools import lru_cache
from pathlib import PurePosixPath

from guardian.mining.core import LanguageSpec, Unit, extract_units

__all__ = ["LanguageSpec", "Unit", "all_specs", "extract_units", "languages", "spec_for_path"]


@lru_cache(maxsize=1)
def all_specs() -> tuple[LanguageSpec, ...]:
    """Every spec, including per-dialect ones (TSX); a new language is one module plus a line."""
    from guardian.mining import go, javascript, python, typescript

    return (python.SPEC, javascript.SPEC, typescript.SPEC, typescript.TSX_SPEC, go.SPEC)


def languages() -> dict[str, LanguageSpec]:
    """Every supported language by name (a family's first spec represents it)."""
    found: dict[str, LanguageSpec] = {}
    for spec in all_specs():
        found.setdefault(spec.name, spec)
    return found


@lru_cache(maxsize=1)
def _by_extension() -> dict[str, LanguageSpec]:
    return {ext: spec for spec in all_specs() for ext in spec.extensions}


def spec_for_path(path: str) -> LanguageSpec | None:
    """The spec whose extensions match the path's suffix (case-sensitive), or None."""
    return _by_extension().get(PurePosixPath(path).suffix)
