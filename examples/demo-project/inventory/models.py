"""Core records: products, stock movements and storage locations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from inventory.money import format_cents
from inventory.skus import normalize_sku


class MovementKind(str, Enum):
    """Why stock moved: goods received, shipped, moved between bins, or counted."""

    RECEIPT = "receipt"
    SHIPMENT = "shipment"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class Product:
    """A sellable item with its purchase cost and list price in cents."""

    sku: str
    name: str
    unit_cost: int
    unit_price: int
    category: str = "general"
    tags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        """Normalise the SKU and reject negative costs or prices."""
        object.__setattr__(self, "sku", normalize_sku(self.sku))
        if self.unit_cost < 0 or self.unit_price < 0:
            raise ValueError(f"{self.sku}: cost and price must not be negative")

    @property
    def margin(self) -> int:
        """Gross margin per unit in cents: list price minus purchase cost."""
        return self.unit_price - self.unit_cost

    def margin_percent(self) -> float:
        """Gross margin as a percentage of the list price; 0.0 for free items."""
        if self.unit_price == 0:
            return 0.0
        return round(100 * self.margin / self.unit_price, 2)

    def describe(self) -> str:
        """One-line description for pick lists, e.g. "ABC-0001 Widget (12.50 EUR)"."""
        return f"{self.sku} {self.name} ({format_cents(self.unit_price)})"


@dataclass(frozen=True)
class Movement:
    """One change to the stock of a product at a location, on a given day.

    Receipts and positive adjustments add units; shipments and negative adjustments remove
    them. A transfer is recorded as a pair of movements, one out and one in.
    """

    sku: str
    location: str
    quantity: int
    kind: MovementKind
    day: date
    reference: str = ""

    def signed_quantity(self) -> int:
        """Quantity with its effect on stock: negative for shipments, as-is otherwise."""
        if self.kind is MovementKind.SHIPMENT:
            return -abs(self.quantity)
        return self.quantity


@dataclass(frozen=True, order=True)
class Location:
    """A storage bin addressed as aisle, rack and shelf, e.g. "A-03-2"."""

    aisle: str
    rack: int
    shelf: int

    @classmethod
    def parse(cls, code: str) -> Location:
        """Parse a bin code such as "A-03-2" into a Location.

        Raises:
            ValueError: If the code does not have three dash-separated parts.
        """
        parts = code.strip().upper().split("-")
        if len(parts) != 3 or not parts[0].isalpha():
            raise ValueError(f"bad location code {code!r}: expected AISLE-RACK-SHELF")
        return cls(aisle=parts[0], rack=int(parts[1]), shelf=int(parts[2]))

    def code(self) -> str:
        """Canonical bin code with a two-digit rack, e.g. "A-03-2"."""
        return f"{self.aisle}-{self.rack:02d}-{self.shelf}"

    def walking_distance(self, other: Location) -> int:
        """Rough walking distance in rack lengths between two bins.

        Changing aisle costs ten rack lengths plus the rack offsets from the aisle heads.
        """
        if self.aisle == other.aisle:
            return abs(self.rack - other.rack)
        return 10 + self.rack + other.rack
