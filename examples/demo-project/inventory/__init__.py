"""A small warehouse inventory library: catalog, stock ledger, pricing and reorder rules."""

from __future__ import annotations

from inventory.catalog import Catalog
from inventory.errors import (
    InsufficientStockError,
    InvalidSKUError,
    InventoryError,
    ParseError,
    UnknownProductError,
)
from inventory.models import Location, Movement, MovementKind, Product
from inventory.stock import StockLedger

__all__ = [
    "Catalog",
    "InsufficientStockError",
    "InvalidSKUError",
    "InventoryError",
    "Location",
    "Movement",
    "MovementKind",
    "ParseError",
    "Product",
    "StockLedger",
    "UnknownProductError",
]

__version__ = "0.3.0"
