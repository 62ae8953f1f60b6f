"""Suppliers and purchase orders sent to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from inventory.catalog import Catalog


class OrderStatus(str, Enum):
    """Lifecycle of a purchase order."""

    DRAFT = "draft"
    SENT = "sent"
    RECEIVED = "received"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Supplier:
    """A vendor we buy from, with its usual delivery time."""

    code: str
    name: str
    lead_time_days: int = 7
    email: str = ""

    def expected_delivery(self, ordered_on: date) -> date:
        """Date an order placed on `ordered_on` should arrive, counting calendar days."""
        return ordered_on + timedelta(days=self.lead_time_days)


@dataclass
class PurchaseOrder:
    """An order to one supplier: SKU quantities plus a status that moves forward only."""

    number: str
    supplier: Supplier
    lines: dict[str, int] = field(default_factory=dict)
    status: OrderStatus = OrderStatus.DRAFT

    def add_line(self, sku: str, quantity: int) -> None:
        """Add units of a SKU to a draft order, merging with an existing line.

        Raises:
            ValueError: If the order is no longer a draft or the quantity is not positive.
        """
        if self.status is not OrderStatus.DRAFT:
            raise ValueError(f"order {self.number} is {self.status.value}, not a draft")
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.lines[sku] = self.lines.get(sku, 0) + quantity

    def send(self) -> None:
        """Mark a draft order as sent; an empty order cannot be sent."""
        if self.status is not OrderStatus.DRAFT:
            raise ValueError(f"order {self.number} was already {self.status.value}")
        if not self.lines:
            raise ValueError(f"order {self.number} has no lines")
        self.status = OrderStatus.SENT

    def cancel(self) -> None:
        """Cancel an order that has not been received yet."""
        if self.status is OrderStatus.RECEIVED:
            raise ValueError(f"order {self.number} was already received")
        self.status = OrderStatus.CANCELLED

    def total_units(self) -> int:
        """Total units across all lines of the order."""
        return sum(self.lines.values())

    def total_cost(self, catalog: Catalog) -> int:
        """Cost of the order in cents at each product's purchase cost."""
        return sum(catalog.get(sku).unit_cost * qty for sku, qty in self.lines.items())


def order_number(day: date, sequence: int) -> str:
    """Human-friendly purchase order number, e.g. "PO-20240131-007"."""
    return f"PO-{day:%Y%m%d}-{sequence:03d}"


def open_orders(orders: list[PurchaseOrder]) -> dict[str, int]:
    """Units on order per SKU across all sent, not yet received, purchase orders."""
    totals: dict[str, int] = {}
    for order in orders:
        if order.status is OrderStatus.SENT:
            for sku, qty in order.lines.items():
                totals[sku] = totals.get(sku, 0) + qty
    return dict(sorted(totals.items()))
