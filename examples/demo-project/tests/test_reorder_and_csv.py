from __future__ import annotations

import io

import pytest

from inventory.csvio import products_from_text, write_stock_levels
from inventory.errors import ParseError
from inventory.reorder import ReorderPolicy, economic_order_quantity, reorder_point, suggest_order


def test_reorder_point_and_suggestion() -> None:
    series = [4, 6, 5, 5, 4, 6, 5]
    policy = ReorderPolicy(lead_time_days=2, service_level_z=1.0, pack_size=6)
    assert reorder_point(series, policy) == 10 + 2
    assert suggest_order(20, 0, series, policy) == 0
    assert suggest_order(5, 0, series, policy) % 6 == 0


def test_eoq() -> None:
    assert economic_order_quantity(1000, 5000, 100) == 316


def test_products_csv_round_trip_and_errors() -> None:
    text = "sku,name,unit_cost,unit_price,category\nabc1234,Widget,4.00,12.50,Tools\n"
    [product] = products_from_text(text)
    assert (product.sku, product.unit_price, product.category) == ("ABC-1234", 1250, "tools")
    with pytest.raises(ParseError, match="line 2"):
        products_from_text("sku,name,unit_cost,unit_price\nabc1234,Widget,x,1\n")
    out = io.StringIO()
    assert write_stock_levels({"B": 1, "A": 2}, out) == 2
    assert out.getvalue() == "sku,on_hand\nA,2\nB,1\n"
