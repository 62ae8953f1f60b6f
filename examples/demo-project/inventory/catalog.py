"""The product catalog: an in-memory index of products by SKU."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from inventory.errors import InvalidSKUError, UnknownProductError
from inventory.models import Product
from inventory.skus import normalize_sku


class Catalog:
    """All products known to the warehouse, looked up by SKU."""

    def __init__(self, products: Iterable[Product] = ()) -> None:
        """Create a catalog holding the given products."""
        self._products: dict[str, Product] = {}
        for product in products:
            self.add(product)

    def __len__(self) -> int:
        """Number of products in the catalog."""
        return len(self._products)

    def __contains__(self, sku: object) -> bool:
        """True if a product with this SKU exists; accepts non-canonical spellings."""
        if not isinstance(sku, str):
            return False
        try:
            return normalize_sku(sku) in self._products
        except InvalidSKUError:
            return False

    def __iter__(self) -> Iterator[Product]:
        """Iterate over products in SKU order."""
        return iter(sorted(self._products.values(), key=lambda p: p.sku))

    def add(self, product: Product, replace: bool = False) -> None:
        """Add a product to the catalog.

        Args:
            product: The product to add.
            replace: Overwrite an existing product with the same SKU instead of failing.

        Raises:
            ValueError: If the SKU is already present and `replace` is false.
        """
        if product.sku in self._products and not replace:
            raise ValueError(f"duplicate product {product.sku}")
        self._products[product.sku] = product

    def get(self, sku: str) -> Product:
        """Return the product with this SKU.

        Raises:
            UnknownProductError: If no such product exists.
        """
        key = normalize_sku(sku)
        try:
            return self._products[key]
        except KeyError:
            raise UnknownProductError(key) from None

    def remove(self, sku: str) -> Product:
        """Remove a product from the catalog and return it."""
        product = self.get(sku)
        del self._products[product.sku]
        return product

    def search(self, text: str) -> list[Product]:
        """Find products whose name or SKU contains `text`, ignoring case."""
        needle = text.strip().lower()
        return [p for p in self if needle in p.name.lower() or needle in p.sku.lower()]

    def by_category(self) -> dict[str, list[Product]]:
        """Group products by category; categories and products are sorted."""
        groups: dict[str, list[Product]] = {}
        for product in self:
            groups.setdefault(product.category, []).append(product)
        return dict(sorted(groups.items()))

    def with_tag(self, tag: str) -> list[Product]:
        """Return every product carrying the given tag, in SKU order."""
        return [p for p in self if tag in p.tags]
