"""Money helpers: all prices are held as integer cents to avoid float rounding errors."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def to_cents(amount: str | Decimal | int) -> int:
    """Convert a decimal amount such as "12.50" to integer cents.

    Args:
        amount: A decimal string, Decimal or whole number of currency units.

    Returns:
        The amount in cents, rounded half up to the nearest cent.

    Raises:
        ValueError: If the amount is not a valid number.
    """
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise ValueError(f"not a money amount: {amount!r}") from None
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def format_cents(cents: int, currency: str = "EUR") -> str:
    """Format integer cents as a human-readable amount, e.g. 1250 -> "12.50 EUR".

    Negative amounts keep their sign in front of the number.
    """
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d} {currency}"


def percent_of(cents: int, percent: Decimal | int) -> int:
    """Return `percent` percent of an amount in cents, rounded half up to a whole cent."""
    share = Decimal(cents) * Decimal(percent) / Decimal(100)
    return int(share.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def split_evenly(cents: int, parts: int) -> list[int]:
    """Split an amount into `parts` shares that differ by at most one cent.

    The first shares receive the leftover cents, so the shares always add up to the total.

    Raises:
        ValueError: If `parts` is not positive.
    """
    if parts <= 0:
        raise ValueError("parts must be positive")
    base, extra = divmod(cents, parts)
    return [base + 1 if i < extra else base for i in range(parts)]
