from __future__ import annotations

import pytest

from guardian.core.schema import ProbeItem
from guardian.evaluation.metrics import final_answer
from guardian.evaluation.probe import first_mentions, probe_summary, score_answer

PATHS = ["inventory/money.py", "inventory/pricing.py", "inventory/__init__.py"]
ALIASES = {
    "money.py": "inventory/money.py",
    "pricing.py": "inventory/pricing.py",
    "inventory.money": "inventory/money.py",
    "inventory.pricing": "inventory/pricing.py",
}


def _file_item(seen: bool = True) -> ProbeItem:
    return ProbeItem(
        id="file:inventory/money.py:percent_of",
        kind="file",
        question="Which file of this repository defines `percent_of`?",
        symbol="percent_of",
        path="inventory/money.py",
        seen=seen,
        expected=["inventory/money.py"],
        need=1,
        rivals=[p for p in PATHS if p != "inventory/money.py"],
        aliases=ALIASES,
    )


def _params_item() -> ProbeItem:
    return ProbeItem(
        id="params:inventory/money.py:percent_of",
        kind="params",
        question="What arguments does `percent_of` accept?",
        symbol="percent_of",
        path="inventory/money.py",
        seen=False,
        expected=["cents", "percent"],
        need=2,
        rivals=["sku", "qty", "price", "line"],
    )


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        ("`percent_of` is defined in `inventory/money.py`.", True),
        ("It lives in money.py.", True),  # a unique file name stands for its path
        ("See module inventory.money, function percent_of.", True),
        ("In `inventory/pricing.py`.", False),
        ("`percent_of` is defined in the `percent_of_file.py` file", False),
        ("inventory/pricing.py, or maybe inventory/money.py", False),  # a wrong file first
        # every file of the repo: the right one comes first, but more wrong than right
        ("inventory/money.py, inventory/pricing.py, inventory/__init__.py", False),
        ("inventory/money.py (called from inventory/pricing.py)", True),
        ("no idea", False),
        (
            "Quote ##begin_quote##inventory/pricing.py##end_quote##\n"
            "<ANSWER>: `inventory/money.py`",
            True,
        ),
        ("<ANSWER>: inventory/pricing.py and not inventory/money.py", False),
    ],
)
def test_file_answers(answer: str, right: bool) -> None:
    assert score_answer(_file_item(), answer) is right


def test_mentions_are_whole_tokens() -> None:
    found = first_mentions("see inventory/money.py", ["inventory/money.py"], ALIASES)
    assert found == {"inventory/money.py": 4}
    # `money.py` inside the full path is the same fact, not a second mention
    assert first_mentions("xinventory/money.pyc", ["inventory/money.py"], ALIASES) == {}
    # `inventory` (the package) does not match inside `inventory.money`
    init = {"inventory": "inventory/__init__.py"}
    assert first_mentions("inventory.money.percent_of", ["inventory/__init__.py"], init) == {}
    assert first_mentions("the inventory.", ["inventory/__init__.py"], init) == {
        "inventory/__init__.py": 4
    }


@pytest.mark.parametrize(
    ("answer", "right"),
    [
        ("`percent_of(cents, percent)`", True),
        ("It takes percent and cents.", True),
        ("It takes cents.", False),  # every parameter is needed
        ("It takes sku, qty, price, cents and percent.", False),  # a wrong one first
        ("cents, percent, plus an optional line", True),  # one extra is tolerated
        ("centsx and percents", False),
    ],
)
def test_params_answers(answer: str, right: bool) -> None:
    assert score_answer(_params_item(), answer) is right


def test_final_answer_takes_text_after_the_last_tag() -> None:
    assert final_answer("reasoning <ANSWER>: one <ANSWER>: two ") == "two"
    assert final_answer("  plain answer ") == "plain answer"


def test_summary_splits_by_mode_kind_and_seen() -> None:
    items = [_file_item(seen=True), _file_item(seen=False), _params_item()]
    summary = probe_summary(
        items, {"closed": [True, False, False], "open": [True, True, False]}, [True, True, False]
    )
    assert summary["n"] == 3
    assert summary["closed"]["accuracy"] == round(1 / 3, 4)
    assert summary["closed"]["seen"] == 1.0 and summary["closed"]["n_seen"] == 1
    assert summary["closed"]["unseen"] == 0.0 and summary["closed"]["n_unseen"] == 2
    assert summary["open"]["by_kind"] == {"file": 1.0, "params": 0.0}
    assert summary["retrieval_recall"] == round(2 / 3, 4)
    assert summary["retrieval_recall_by_kind"] == {"file": 1.0, "params": 0.0}


def _returns_item(expected: str) -> ProbeItem:
    return ProbeItem(
        id=f"returns:inventory/stock.py:{expected}",
        kind="returns",
        question="What type of value comes back from `top_movers`?",
        symbol="top_movers",
        path="inventory/stock.py",
        seen=True,
        expected=[expected],
        need=1,
        rivals=[
            t for t in ("int", "str", "tuple[str, int]", "list[tuple[str, int]]") if t != expected
        ],
    )


@pytest.mark.parametrize(
    ("expected", "answer", "right"),
    [
        # the rivals `str`, `int` and `tuple[str, int]` are parts of the right type, not rivals
        ("list[tuple[str, int]]", "<ANSWER>: `list[tuple[str, int]]`", True),
        ("list[tuple[str, int]]", "<ANSWER>: `tuple[str, int]`", False),
        # and the right `int` inside a rival type is not a mention of it
        ("int", "<ANSWER>: `tuple[str, int]`", False),
        ("int", "<ANSWER>: `int`", True),
    ],
)
def test_a_fact_inside_a_longer_fact_is_not_counted(
    expected: str, answer: str, right: bool
) -> None:
    assert score_answer(_returns_item(expected), answer) is right
    text = final_answer(answer)
    found = first_mentions(text, ["int", "str", "tuple[str, int]", "list[tuple[str, int]]"], {})
    assert len(found) == 1  # only the longest mention survives
