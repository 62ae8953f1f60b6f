"""Implementations looked up by the name a config field gives (targets, connectors, formats)."""

from __future__ import annotations

from typing import Generic, TypeVar

from guardian.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> implementation for one config field; an unknown name is one ConfigError."""

    def __init__(self, field: str) -> None:
        self.field = field
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register `item` under `name`; a name is registered once."""
        if name in self._items:
            raise ValueError(f"{self.field}: '{name}' is registered twice")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """The implementation registered as `name`; the error names the field and the choices."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none registered"
            raise ConfigError(f"{self.field}: unknown name '{name}' (known: {known})") from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._items)
