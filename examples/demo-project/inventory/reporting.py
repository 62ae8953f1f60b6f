"""Plain-text reports for the warehouse team: stock value, low stock and movers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from inventory.catalog import Catalog
from inventory.models import Movement, MovementKind
from inventory.money import format_cents
from inventory.stock import StockLedger


@dataclass(frozen=True)
class LowStockLine:
    """One product that has fallen below its minimum level."""

    sku: str
    name: str
    on_hand: int
    minimum: int

    @property
    def shortfall(self) -> int:
        """Units needed to get back to the minimum level."""
        return self.minimum - self.on_hand


def stock_value(catalog: Catalog, ledger: StockLedger) -> int:
    """Total value of the stock on hand at purchase cost, in cents."""
    return sum(p.unit_cost * max(ledger.on_hand(p.sku), 0) for p in catalog)


def low_stock(
    catalog: Catalog, ledger: StockLedger, minimums: dict[str, int]
) -> list[LowStockLine]:
    """Products whose on-hand quantity is below their configured minimum, worst first.

    Products without a configured minimum are never reported.
    """
    lines = [
        LowStockLine(p.sku, p.name, ledger.on_hand(p.sku), minimums[p.sku])
        for p in catalog
        if p.sku in minimums and ledger.on_hand(p.sku) < minimums[p.sku]
    ]
    return sorted(lines, key=lambda line: (-line.shortfall, line.sku))


def top_movers(movements: list[Movement], limit: int = 5) -> list[tuple[str, int]]:
    """The SKUs with the most units shipped, as (sku, units) pairs, highest first."""
    shipped: Counter[str] = Counter()
    for movement in movements:
        if movement.kind is MovementKind.SHIPMENT:
            shipped[movement.sku] += abs(movement.quantity)
    return sorted(shipped.items(), key=lambda item: (-item[1], item[0]))[:limit]


def movement_summary(movements: list[Movement]) -> dict[str, int]:
    """Net units moved per movement kind, e.g. {"receipt": 120, "shipment": -80}."""
    summary: dict[str, int] = {kind.value: 0 for kind in MovementKind}
    for movement in movements:
        summary[movement.kind.value] += movement.signed_quantity()
    return summary


def format_table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> str:
    """Render rows as a fixed-width text table with a header and a separator line.

    Args:
        rows: Table rows; every row must have as many cells as there are headers.
        headers: Column titles.

    Returns:
        The table as a string, one line per row, columns padded to their widest cell.
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


def low_stock_report(lines: list[LowStockLine]) -> str:
    """Text table of low-stock products for the morning e-mail; a short note when none."""
    if not lines:
        return "All products are at or above their minimum stock level."
    rows = [(x.sku, x.name, str(x.on_hand), str(x.minimum), str(x.shortfall)) for x in lines]
    return format_table(rows, ("SKU", "Product", "On hand", "Minimum", "Short"))


def valuation_report(catalog: Catalog, ledger: StockLedger) -> str:
    """Text table of stock value per category, with a grand total line."""
    rows: list[tuple[str, ...]] = []
    for category, products in catalog.by_category().items():
        value = sum(p.unit_cost * max(ledger.on_hand(p.sku), 0) for p in products)
        rows.append((category, str(len(products)), format_cents(value)))
    rows.append(("TOTAL", str(len(catalog)), format_cents(stock_value(catalog, ledger))))
    return format_table(rows, ("Category", "Products", "Value"))
