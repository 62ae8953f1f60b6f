from __future__ import annotations

from decimal import Decimal

from inventory.models import Product
from inventory.money import format_cents, split_evenly, to_cents
from inventory.pricing import BulkDiscount, FixedDiscount, PercentageDiscount, line_price

WIDGET = Product("abc-0001", "Widget", unit_cost=400, unit_price=1250, category="tools")


def test_money_round_trip() -> None:
    assert to_cents("12.505") == 1251
    assert format_cents(-123456) == "-1,234.56 EUR"
    assert split_evenly(100, 3) == [34, 33, 33]


def test_best_discount_wins_and_does_not_stack() -> None:
    rules = [
        PercentageDiscount(Decimal(10)),
        BulkDiscount(((10, Decimal(5)), (50, Decimal(15)))),
        FixedDiscount(500),
    ]
    assert line_price(WIDGET, 2, rules) == 2500 - 500
    assert line_price(WIDGET, 100, rules) == 125000 - 18750


def test_category_discount_only_applies_to_its_category() -> None:
    rule = PercentageDiscount(Decimal(50), category="garden")
    assert line_price(WIDGET, 1, [rule]) == 1250
