"""Pricing rules: discounts for quantity, customer tier and promotions, plus tax."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from inventory.models import Product
from inventory.money import percent_of


class DiscountRule(Protocol):
    """Anything that can compute a discount in cents for an order line."""

    def discount(self, product: Product, quantity: int, line_total: int) -> int:
        """Discount in cents for `quantity` units of `product` costing `line_total`."""
        ...


@dataclass(frozen=True)
class PercentageDiscount:
    """A flat percentage off every line, optionally limited to one category."""

    percent: Decimal
    category: str | None = None

    def discount(self, product: Product, quantity: int, line_total: int) -> int:
        """Apply the percentage if the product is in the rule's category (or any category)."""
        if self.category is not None and product.category != self.category:
            return 0
        return percent_of(line_total, self.percent)


@dataclass(frozen=True)
class BulkDiscount:
    """Tiered discount: the more units ordered, the higher the percentage off.

    `tiers` maps a minimum quantity to the percentage applied from that quantity on.
    """

    tiers: tuple[tuple[int, Decimal], ...]

    def rate_for(self, quantity: int) -> Decimal:
        """The percentage of the highest tier whose minimum quantity is reached, else 0."""
        reached = [pct for minimum, pct in self.tiers if quantity >= minimum]
        return max(reached, default=Decimal(0))

    def discount(self, product: Product, quantity: int, line_total: int) -> int:
        """Discount in cents for the tier the ordered quantity falls into."""
        return percent_of(line_total, self.rate_for(quantity))


@dataclass(frozen=True)
class FixedDiscount:
    """A fixed amount off a line, never more than the line itself."""

    cents: int

    def discount(self, product: Product, quantity: int, line_total: int) -> int:
        """The fixed amount, capped at the line total so prices never go negative."""
        return min(self.cents, line_total)


def best_discount(rules: list[DiscountRule], product: Product, quantity: int) -> int:
    """The largest single discount any rule grants for a line; discounts do not stack.

    Args:
        rules: Candidate discount rules.
        product: Product being ordered.
        quantity: Units ordered.

    Returns:
        The best discount in cents, or 0 when no rule applies.
    """
    line_total = product.unit_price * quantity
    return max((rule.discount(product, quantity, line_total) for rule in rules), default=0)


def line_price(product: Product, quantity: int, rules: list[DiscountRule]) -> int:
    """Price of an order line in cents after the best applicable discount."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    return product.unit_price * quantity - best_discount(rules, product, quantity)


def with_tax(net_cents: int, rate_percent: Decimal = Decimal("19")) -> int:
    """Add value-added tax to a net amount in cents, rounded half up."""
    return net_cents + percent_of(net_cents, rate_percent)


def order_total(lines: list[tuple[Product, int]], rules: list[DiscountRule]) -> int:
    """Net total of an order in cents: the sum of discounted line prices, before tax."""
    return sum(line_price(product, qty, rules) for product, qty in lines)
