"""Exceptions raised by the inventory library."""

from __future__ import annotations


class InventoryError(Exception):
    """Base class for every error raised by the inventory library."""


class InvalidSKUError(InventoryError):
    """Raised when a stock-keeping unit code does not match the expected format."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"invalid SKU {sku!r}: expected 3 letters, a dash and 4 digits")
        self.sku = sku


class UnknownProductError(InventoryError):
    """Raised when a SKU is not present in the catalog."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"unknown product {sku}")
        self.sku = sku


class InsufficientStockError(InventoryError):
    """Raised when a shipment or transfer asks for more units than are on hand."""

    def __init__(self, sku: str, location: str, requested: int, available: int) -> None:
        super().__init__(
            f"cannot take {requested} x {sku} from {location}: only {available} on hand"
        )
        self.sku = sku
        self.location = location
        self.requested = requested
        self.available = available


class ParseError(InventoryError):
    """Raised when a CSV row cannot be turned into a record; names the line number."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
