"""JavaScript mining: exact units, spans, signatures and doc comments on a realistic JSX file."""

from __future__ import annotations

import pytest

from guardian.mining import extract_units, spec_for_path
from guardian.mining.core import Unit

JS = spec_for_path("app/cart.jsx")

CART = """\
/**
 * Shopping cart utilities.
 */
import React, { useState } from "react";

const TAX_RATE = 0.2;

/**
 * Format a price in cents as a currency string.
 * @param {number} cents
 */
export function formatPrice(cents, currency = "EUR") {
  return `${(cents / 100).toFixed(2)} ${currency}`;
}

// Sum the line totals of a cart.
export const cartTotal = (items) =>
  items.reduce((sum, item) => sum + item.price * item.qty, 0);

export class Cart extends EventTarget {
  #items = [];
  static empty = () => new Cart();

  /** Add an item, merging quantities. */
  add(item) {
    const existing = this.#items.find((i) => i.sku === item.sku);
    if (existing) {
      existing.qty += item.qty;
    } else {
      this.#items.push({ ...item });
    }
    this.dispatchEvent(new Event("change"));
  }

  get size() {
    return this.#items.length;
  }

  onChange = (handler) => {
    this.addEventListener("change", handler);
  };

  async *stream() {
    for (const item of this.#items) {
      yield item;
    }
  }
}

function CartView({ cart }) {
  const [open, setOpen] = useState(false);
  const toggle = () => setOpen(!open);
  return (
    <div className="cart" onClick={toggle}>
      {open && <span>{formatPrice(cartTotal(cart.items))}</span>}
    </div>
  );
}

Cart.prototype.clear = function () {
  this.items = [];
};

module.exports.withTax = function withTax(amount) {
  return amount * (1 + TAX_RATE);
};

export default CartView;
"""

EXPECTED = [
    (
        "function",
        "formatPrice",
        8,
        14,
        'function formatPrice(cents, currency = "EUR")',
        "Format a price in cents as a currency string.\n@param {number} cents",
    ),
    (
        "function",
        "cartTotal",
        16,
        18,
        "const cartTotal = (items) =>",
        "Sum the line totals of a cart.",
    ),
    ("class", "Cart", 20, 48, "class Cart extends EventTarget", None),
    ("method", "Cart.empty", 22, 22, "static empty = () =>", None),
    ("method", "Cart.add", 24, 33, "add(item)", "Add an item, merging quantities."),
    ("method", "Cart.size", 35, 37, "get size()", None),
    ("method", "Cart.onChange", 39, 41, "onChange = (handler) =>", None),
    ("method", "Cart.stream", 43, 47, "async *stream()", None),
    ("function", "CartView", 50, 58, "function CartView({cart})", None),
    ("function", "CartView.toggle", 52, 52, "const toggle = () =>", None),
    ("method", "Cart.clear", 60, 62, "Cart.prototype.clear = function ()", None),
    ("function", "withTax", 64, 66, "module.exports.withTax = function withTax(amount)", None),
]


def _table(units: list[Unit]) -> list[tuple[object, ...]]:
    return [(u.kind, u.qualname, u.start_line, u.end_line, u.signature, u.docstring) for u in units]


def test_registry_maps_javascript_extensions() -> None:
    assert JS is not None and JS.name == "javascript"
    for path in ("a.js", "b.mjs", "c.cjs", "d.jsx"):
        assert spec_for_path(path) is JS


def test_cart_units_match_exactly() -> None:
    assert JS is not None
    warnings: list[str] = []
    units = extract_units(CART.encode(), "app/cart.jsx", JS, warnings)
    assert _table(units) == EXPECTED
    assert warnings == []


def test_code_spans_comments_export_and_dedents_members() -> None:
    assert JS is not None
    units = {u.qualname: u for u in extract_units(CART.encode(), "app/cart.jsx", JS)}
    assert units["formatPrice"].code.startswith("/**\n * Format a price")
    assert "export function formatPrice(cents" in units["formatPrice"].code
    assert units["cartTotal"].code.splitlines()[1].startswith("export const cartTotal = (items)")
    assert units["cartTotal"].code.endswith("0);")
    add = units["Cart.add"].code
    assert add.startswith("/** Add an item, merging quantities. */\nadd(item) {\n  const existing")
    assert add.endswith("\n}")
    assert units["Cart.onChange"].code.endswith("handler);\n}")
    assert "<span>{formatPrice" in units["CartView"].code
    lines = CART.splitlines()
    for unit in units.values():
        assert len(unit.code.splitlines()) == unit.end_line - unit.start_line + 1
        last = lines[unit.end_line - 1].strip()
        assert unit.code.splitlines()[-1].strip() in (last, last.rstrip(";"))


BROKEN = """\
function good(a) {
  return a + 1;
}

function broken(a, {
  return a +;
}

class Fine {
  ok() { return 1; }
}

const later = () => 2;
"""


def test_syntax_error_keeps_the_other_units() -> None:
    assert JS is not None
    warnings: list[str] = []
    units = extract_units(BROKEN.encode(), "src/broken.js", JS, warnings)
    assert [(u.qualname, u.start_line, u.end_line) for u in units] == [
        ("good", 1, 3),
        ("Fine", 9, 11),
        ("Fine.ok", 10, 10),
        ("later", 13, 13),
    ]
    assert warnings == ["src/broken.js:5: syntax error; kept 4 cleanly parsed units"]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        (b"export default function () { return 1; }\n", [("function", "default")]),
        (b"export default class { run() {} }\n", [("class", "default"), ("method", "default.run")]),
        (b"const a = 1, f = () => a, g = 2;\n", [("function", "f")]),
        (b"const { x } = obj; const C = class { m() {} };\n", [("class", "C"), ("method", "C.m")]),
        (b"items.map((i) => i * 2); const o = { m() {}, n: () => 1 };\n", []),
        (
            b"exports.run = async () => {};\nthis.x = function () {};\n",
            [("function", "run"), ("function", "x")],
        ),
    ],
)
def test_unit_selection(src: bytes, expected: list[tuple[str, str]]) -> None:
    assert JS is not None
    assert [(u.kind, u.qualname) for u in extract_units(src, "m.js", JS)] == expected


def test_identical_bodies_share_a_norm_hash_despite_names_comments_and_layout() -> None:
    assert JS is not None
    src = b"""\
function first(a) {
  // add one
  return a + 1;
}
function second(a) { return a + 1; }
function third(a) { return a + 2; }
"""
    first, second, third = extract_units(src, "m.js", JS)
    assert first.norm_hash == second.norm_hash
    assert third.norm_hash != first.norm_hash
