"""Stock-keeping unit (SKU) codes: a three-letter category prefix, a dash and four digits."""

from __future__ import annotations

import re

from inventory.errors import InvalidSKUError

SKU_PATTERN = re.compile(r"^[A-Z]{3}-\d{4}$")


def normalize_sku(raw: str) -> str:
    """Clean up a SKU typed by a person: trim spaces, upper-case it and restore the dash.

    Args:
        raw: The SKU as entered, e.g. " abc1234 " or "abc-1234".

    Returns:
        The canonical form, e.g. "ABC-1234".

    Raises:
        InvalidSKUError: If the cleaned value still is not a valid SKU.
    """
    compact = raw.strip().upper().replace(" ", "").replace("-", "")
    candidate = f"{compact[:3]}-{compact[3:]}"
    if not SKU_PATTERN.match(candidate):
        raise InvalidSKUError(raw)
    return candidate


def is_valid_sku(sku: str) -> bool:
    """Return True if `sku` is already in canonical form, without normalising it."""
    return bool(SKU_PATTERN.match(sku))


def sku_category(sku: str) -> str:
    """Return the three-letter category prefix of a canonical SKU, e.g. "ABC"."""
    if not is_valid_sku(sku):
        raise InvalidSKUError(sku)
    return sku[:3]


def next_sku(existing: list[str], category: str) -> str:
    """Allocate the next free SKU in a category, one above the highest number in use.

    Args:
        existing: SKUs already allocated, in any category.
        category: Three-letter category prefix for the new SKU.

    Returns:
        The new SKU; numbering starts at 0001 for an empty category.
    """
    prefix = category.upper()
    numbers = [int(s[4:]) for s in existing if is_valid_sku(s) and s.startswith(prefix)]
    candidate = f"{prefix}-{max(numbers, default=0) + 1:04d}"
    if not is_valid_sku(candidate):
        raise InvalidSKUError(candidate)
    return candidate
