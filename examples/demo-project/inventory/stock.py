"""The stock ledger: every movement is recorded, and on-hand levels are derived from them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from inventory.errors import InsufficientStockError
from inventory.models import Movement, MovementKind


class StockLedger:
    """Append-only record of stock movements with running on-hand totals per bin."""

    def __init__(self) -> None:
        """Create an empty ledger."""
        self._movements: list[Movement] = []
        self._on_hand: dict[tuple[str, str], int] = defaultdict(int)

    def _record(self, movement: Movement) -> Movement:
        self._movements.append(movement)
        self._on_hand[(movement.sku, movement.location)] += movement.signed_quantity()
        return movement

    def on_hand(self, sku: str, location: str | None = None) -> int:
        """Units of a product on hand, at one location or summed over all locations."""
        if location is not None:
            return self._on_hand.get((sku, location), 0)
        return sum(qty for (s, _), qty in self._on_hand.items() if s == sku)

    def receive(self, sku: str, location: str, quantity: int, day: date, ref: str = "") -> Movement:
        """Book goods received from a supplier into a location.

        Raises:
            ValueError: If the quantity is not positive.
        """
        if quantity <= 0:
            raise ValueError("received quantity must be positive")
        return self._record(Movement(sku, location, quantity, MovementKind.RECEIPT, day, ref))

    def ship(self, sku: str, location: str, quantity: int, day: date, ref: str = "") -> Movement:
        """Book goods shipped to a customer from a location.

        Raises:
            ValueError: If the quantity is not positive.
            InsufficientStockError: If the location holds fewer units than requested.
        """
        if quantity <= 0:
            raise ValueError("shipped quantity must be positive")
        available = self.on_hand(sku, location)
        if quantity > available:
            raise InsufficientStockError(sku, location, quantity, available)
        return self._record(Movement(sku, location, quantity, MovementKind.SHIPMENT, day, ref))

    def transfer(self, sku: str, source: str, target: str, quantity: int, day: date) -> None:
        """Move units between two locations as a matching pair of transfer movements.

        Raises:
            InsufficientStockError: If the source location holds fewer units than requested.
        """
        available = self.on_hand(sku, source)
        if quantity > available:
            raise InsufficientStockError(sku, source, quantity, available)
        ref = f"transfer {source}->{target}"
        self._record(Movement(sku, source, -quantity, MovementKind.TRANSFER, day, ref))
        self._record(Movement(sku, target, quantity, MovementKind.TRANSFER, day, ref))

    def adjust(self, sku: str, location: str, counted: int, day: date) -> Movement | None:
        """Correct the books after a physical count; returns None when nothing changed.

        Args:
            sku: Product that was counted.
            location: Bin that was counted.
            counted: Units actually found on the shelf.
            day: Date of the count.
        """
        delta = counted - self.on_hand(sku, location)
        if delta == 0:
            return None
        movement = Movement(sku, location, delta, MovementKind.ADJUSTMENT, day, "stock count")
        return self._record(movement)

    def history(self, sku: str, since: date | None = None) -> list[Movement]:
        """All movements of one product, oldest first, optionally only from `since` on."""
        return [m for m in self._movements if m.sku == sku and (since is None or m.day >= since)]

    def locations_of(self, sku: str) -> list[str]:
        """Locations currently holding at least one unit of the product, sorted by code."""
        return sorted(loc for (s, loc), qty in self._on_hand.items() if s == sku and qty > 0)

    def skus(self) -> list[str]:
        """Every SKU that has ever moved through the ledger, sorted."""
        return sorted({m.sku for m in self._movements})


def daily_shipments(movements: list[Movement]) -> dict[date, int]:
    """Total units shipped per day, for demand forecasting; days without shipments are absent."""
    totals: dict[date, int] = defaultdict(int)
    for movement in movements:
        if movement.kind is MovementKind.SHIPMENT:
            totals[movement.day] += abs(movement.quantity)
    return dict(sorted(totals.items()))
