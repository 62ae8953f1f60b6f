"""What `guardian ask` shows: the answer without training markup, evidence as path:line."""

from __future__ import annotations

from guardian.core.schema import Chunk
from guardian.engine.citations import cite, readable

CODE = (
    "def cancel(self) -> None:\n"
    '    """Cancel the order and release its stock."""\n'
    "    self.status = OrderStatus.CANCELLED\n"
    "    self.release()\n"
)
UNIT = Chunk(
    id="c1",
    repo="demo",
    commit="abc",
    path="inventory/orders.py",
    language="python",
    kind="method",
    name="cancel",
    qualname="PurchaseOrder.cancel",
    signature="def cancel(self) -> None",
    docstring="Cancel the order and release its stock.",
    code=CODE,
    start_line=40,
    end_line=43,
    content_hash="h",
)


def test_readable_drops_markup_and_keeps_the_final_answer() -> None:
    raw = (
        "##Reason: Docstring of `PurchaseOrder.cancel`: ##begin_quote##Cancel the order and "
        "release its stock.##end_quote## <ANSWER>: Use `order.cancel()`: it cancels the order."
    )
    assert readable(raw) == "Use `order.cancel()`: it cancels the order."
    inline = "It does ##begin_quote## self.release() ##end_quote## last."
    assert readable(inline) == "It does “self.release()” last."
    assert readable("plain prose, no markup") == "plain prose, no markup"


def test_quotes_are_cited_at_their_line_or_the_units_first_line() -> None:
    raw = (
        "##begin_quote##self.release()##end_quote## and "
        "##begin_quote##Cancel the order and release its stock.##end_quote## "
        "##begin_quote##inventory/orders.py:40-43 method PurchaseOrder.cancel##end_quote##"
        "##begin_quote##not in any document##end_quote## <ANSWER>: it releases stock"
    )
    cited = cite(raw, ["c1"], {"c1": UNIT})
    assert [(str(c), c.quote) for c in cited] == [
        ("inventory/orders.py:43", "self.release()"),
        ("inventory/orders.py:41", "Cancel the order and release its stock."),
        ("inventory/orders.py:40", "inventory/orders.py:40-43 method PurchaseOrder.cancel"),
    ]
    assert cite(raw, [], {"c1": UNIT}) == []  # closed-book: nothing shown, nothing cited
    outline = cite(
        "##begin_quote##Defines: inventory/orders.py##end_quote##",
        ["module:inventory/orders.py"],
        {},
    )
    assert [str(c) for c in outline] == ["inventory/orders.py:1"]
