"""Answer-quality marks on hand-written answers to demo-project items, computed by the rules."""

from __future__ import annotations

import pytest

from guardian.core.schema import AskItem
from guardian.evaluation.answers import (
    AskScore,
    answers_summary,
    is_collapsed,
    score_ask,
    strip_markup,
)
from guardian.evaluation.hallucination import RepoNames, unknown_names
from tests.data.test_asks import demo_chunks, item

NAMES = RepoNames.of(demo_chunks())
COLLAPSED = "##begin_quote##De##end_quote## <ANSWER>: del"


def mark(it: AskItem, answer: str, passed: bool | None = None) -> AskScore:
    return score_ask(it, answer, it.question, NAMES, passed)


@pytest.mark.parametrize(
    ("answer", "collapsed"),
    [
        (COLLAPSED, True),
        ("<ANSWER>: OrderStatus and Supplier", True),
        ("##begin_quote##Cancel an order that has not been received yet.##end_quote##", True),
        ("##Reason: ##begin_quote##def cancel(self)##end_quote## <ANSWER>: `cancel`", True),
        ("It cancels the order right away.", False),  # six words
        ("def cancel(self): pass", False),  # code, however short
        ("```python\nx()\n```", False),
    ],
)
def test_collapse_is_a_bare_quote_and_a_few_tokens(answer: str, collapsed: bool) -> None:
    assert is_collapsed(answer) is collapsed


def test_markup_is_stripped_before_judging() -> None:
    assert strip_markup(COLLAPSED) == "del"
    assert strip_markup("##Reason: ##begin_quote##a b##end_quote## so\n<ANSWER>: c") == "so c"


def test_a_collapsed_howto_scores_nothing() -> None:
    howto = item("howto", "PurchaseOrder.cancel")
    assert "cancel an order that has not been received yet" in howto.question
    s = mark(howto, COLLAPSED)
    assert (s.score, s.collapsed, s.named, s.prose, s.invented) == (0.0, True, False, False, 0)


def test_howto_marks_the_name_and_a_call() -> None:
    howto = item("howto", "PurchaseOrder.cancel")
    call = "Load the order and call `order.cancel()`; it refuses an order already received."
    assert mark(howto, call).score == 1.0  # `.cancel` names it (0.6), `cancel(` calls it (0.4)
    named = "Use `PurchaseOrder.cancel` while the order is still open, before goods arrive."
    assert mark(howto, named).score == 0.6
    prose = "You cancel an order that has not been received yet through the purchase order."
    s = mark(howto, prose)  # the plain word `cancel` in prose does not name the method
    assert (s.score, s.named, s.prose) == (0.0, False, True)


def test_explain_marks_the_name_and_the_docstring_content() -> None:
    explain = item("explain", "PurchaseOrder.cancel")
    assert explain.content == ["cancel", "order", "received"]
    fluent = (
        "`PurchaseOrder.cancel` stops an order before the supplier has delivered it, "
        "and nothing else about it changes."
    )
    s = mark(explain, fluent)  # named; content: cancel (its name), order; not received
    assert (s.named, s.content, s.prose, s.collapsed) == (True, 0.6667, True, False)
    assert s.score == pytest.approx(0.4 + 0.6 * 2 / 3, abs=1e-4)
    unnamed = "It cancels an order which has not yet been received by the warehouse at all."
    s = mark(explain, unnamed)  # `cancels` and `cancel` share a stem
    assert (s.named, s.content, s.score) == (False, 1.0, 0.6)
    assert mark(explain, "<ANSWER>: OrderStatus and Supplier").score == 0.0


def test_where_marks_the_file_or_the_symbol() -> None:
    where = item("where", "PurchaseOrder.cancel")
    for answer, score in [
        ("In `inventory/suppliers.py`.", 1.0),
        ("suppliers.py", 1.0),  # a `/`-aligned suffix; short answers never collapse here
        ("See inventory/suppliers.py:64.", 1.0),
        ("The module `inventory.suppliers` handles it.", 1.0),
        ("`PurchaseOrder.cancel` does.", 1.0),
        ("In `inventory/stock.py`.", 0.0),
        ("pliers.py", 0.0),  # a suffix not at a `/`
    ]:
        s = mark(where, answer)
        assert (s.score, s.collapsed) == (score, False), answer


def test_usage_marks_a_call_and_its_arguments() -> None:
    usage = item("usage", "StockLedger.receive")  # sku, location, quantity, day, ref="" (4 needed)
    full = "```python\nledger.receive('ABC-0001', 'A-01-1', 10, date.today())\n```"
    assert mark(usage, full).score == 1.0
    keyword = "ledger.receive('ABC-0001', 'A-01-1', quantity=10, day=today, ref='PO-1')"
    assert mark(usage, keyword).score == 1.0
    assert mark(usage, "ledger.receive(sku='A', qty=3, where='B', day=d)").score == 0.5
    assert mark(usage, "ledger.receive('ABC-0001')").score == 0.5  # too few arguments
    assert mark(usage, "Call receive on the ledger with the goods.").score == 0.0


def test_code_marks_parsing_signature_and_tests() -> None:
    code = item("code", "to_cents")
    assert code.params == ["amount"] and code.tests == ["tests/test_pricing.py"]
    right = "```python\ndef to_cents(amount):\n    return int(round(float(amount) * 100))\n```"
    assert mark(code, right).score == 1.0  # 0.4 parses + 0.6 signature
    assert mark(code, right, passed=True).score == 1.0
    s = mark(code, right, passed=False)
    assert (s.score, s.parses, s.signature_ok, s.passed) == (0.5, True, True, False)
    renamed = "def to_cents(value):\n    return int(value * 100)"
    assert mark(code, renamed).score == 0.4
    assert mark(code, renamed, passed=False).score == 0.2
    broken = "```python\ndef to_cents(amount):\n    return (\n```"
    s = mark(code, broken)
    assert (s.score, s.parses, s.signature_ok) == (0.0, False, False)
    s = mark(code, "<ANSWER>: `to_cents`")
    assert (s.score, s.collapsed) == (0.0, True)


def test_methods_keep_self_out_of_their_signature() -> None:
    code = item("code", "StockLedger.adjust")
    answer = (
        "    def adjust(self, sku, location, counted, day):\n"
        "        return self.on_hand(sku, location) - counted\n"
    )
    s = mark(code, answer)
    assert (s.parses, s.signature_ok, s.score) == (True, True, 1.0)


def test_invented_counts_distinct_unknown_names() -> None:
    explain = item("explain", "PurchaseOrder.cancel")
    answer = (
        "`PurchaseOrder.cancel` calls `Foo.frobnicate` (see `Foo.frobnicate()` in "
        "`inventory/orders.py`) and then `OrderStatus`."
    )
    assert unknown_names(answer, explain.question, NAMES) == [
        "Foo.frobnicate",
        "inventory/orders.py",
    ]
    assert mark(explain, answer).invented == 2
    assert mark(explain, "It calls `Foo.frobnicate` on the order.").invented == 1
    assert mark(explain, "`frobnicate` it.").invented == 1
    assert score_ask(explain, "`frobnicate` it.", "frobnicate", NAMES).invented == 0  # prompt


def test_summary_per_kind_collapse_and_seen() -> None:
    cancel = item("howto", "PurchaseOrder.cancel")  # seen: inventory/suppliers.py
    where = item("where", "round_to_pack")  # unseen
    code = item("code", "to_cents")  # unseen
    items = [cancel, where, code]
    scores = [mark(cancel, COLLAPSED), mark(where, "`inventory/reorder.py`"), mark(code, "`zqx`")]
    summary = answers_summary(items, scores)
    assert summary["n"] == 3 and summary["score"] == pytest.approx(1 / 3, abs=1e-4)
    assert summary["by_kind"]["where"] == {"n": 1, "score": 1.0, "named": 1.0, "collapse": None}
    assert summary["by_kind"]["howto"]["collapse"] == 1.0
    assert summary["collapse"] == 1.0  # both the howto and the code answer collapsed
    assert (summary["seen"], summary["unseen"]) == (0.0, 0.5)
    assert summary["invented_per_answer"] == pytest.approx(1 / 3, abs=1e-4)  # `zqx`
    empty = answers_summary([], [])
    assert empty["n"] == 0 and empty["score"] is None and empty["by_kind"] == {}
