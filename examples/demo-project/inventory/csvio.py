"""Reading and writing inventory data as CSV files exported from the shop system."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import TextIO

from inventory.errors import InvalidSKUError, ParseError
from inventory.models import Movement, MovementKind, Product
from inventory.money import to_cents

PRODUCT_COLUMNS = ("sku", "name", "unit_cost", "unit_price", "category")
MOVEMENT_COLUMNS = ("day", "sku", "location", "kind", "quantity", "reference")


def _require_columns(reader: csv.DictReader, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ParseError(1, f"missing column(s): {', '.join(missing)}")


def parse_product_row(row: dict[str, str], line: int) -> Product:
    """Turn one CSV row into a Product; prices are given in currency units, e.g. "12.50".

    Raises:
        ParseError: If a price is not a number or the SKU is invalid.
    """
    try:
        return Product(
            sku=row["sku"],
            name=row["name"].strip(),
            unit_cost=to_cents(row["unit_cost"]),
            unit_price=to_cents(row["unit_price"]),
            category=(row.get("category") or "general").strip().lower(),
        )
    except (ValueError, InvalidSKUError) as exc:
        raise ParseError(line, str(exc)) from exc


def read_products(handle: TextIO) -> list[Product]:
    """Read every product from a CSV file with a header row.

    Args:
        handle: An open text file positioned at the header row.

    Returns:
        The products in file order.
    """
    reader = csv.DictReader(handle)
    _require_columns(reader, PRODUCT_COLUMNS[:4])
    return [parse_product_row(row, line) for line, row in enumerate(reader, start=2)]


def parse_movement_row(row: dict[str, str], line: int) -> Movement:
    """Turn one CSV row into a Movement; dates are ISO formatted (YYYY-MM-DD).

    Raises:
        ParseError: If the date, kind or quantity cannot be parsed.
    """
    try:
        return Movement(
            sku=row["sku"].strip().upper(),
            location=row["location"].strip().upper(),
            quantity=int(row["quantity"]),
            kind=MovementKind(row["kind"].strip().lower()),
            day=date.fromisoformat(row["day"].strip()),
            reference=(row.get("reference") or "").strip(),
        )
    except ValueError as exc:
        raise ParseError(line, str(exc)) from exc


def read_movements(handle: TextIO) -> list[Movement]:
    """Read every stock movement from a CSV file with a header row, in file order."""
    reader = csv.DictReader(handle)
    _require_columns(reader, MOVEMENT_COLUMNS[:5])
    return [parse_movement_row(row, line) for line, row in enumerate(reader, start=2)]


def write_stock_levels(levels: dict[str, int], handle: TextIO) -> int:
    """Write SKU and on-hand quantity rows, sorted by SKU; returns the number of rows."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(["sku", "on_hand"])
    for sku in sorted(levels):
        writer.writerow([sku, levels[sku]])
    return len(levels)


def products_from_text(text: str) -> list[Product]:
    """Parse products from CSV text, e.g. a file body received over HTTP."""
    return read_products(io.StringIO(text))
