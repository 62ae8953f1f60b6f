from __future__ import annotations

import pytest

from guardian.evaluation.hallucination import RepoNames, hallucination
from tests.data.test_probe import chunks

NAMES = RepoNames.of(chunks())
DOC = "shop/money.py:10-12 function percent_of\nParameters: cents, percent\nReturn type: int"


@pytest.mark.parametrize(
    "answer",
    [
        "`percent_of` is defined in `shop/money.py`.",
        "At `shop/money.py:10-12`.",
        "It lives in `money.py`; see `shop.money.percent_of`.",  # path suffix, dotted module
        "Call `PriceList.total()` with `skus`; it returns an `int`.",  # params, builtins
        "##begin_quote##Parameters: cents, percent##end_quote##\n<ANSWER>: `cents`, `percent`",
        "It returns `list[str]` (see `None` and `self`).",  # type expressions are not judged
        "The answer is `a sum of prices`.",  # prose in backticks is not judged
    ],
)
def test_grounded_answers(answer: str) -> None:
    assert hallucination(answer, DOC, NAMES) is None


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("`percent_of` is defined in the `percent_of_file.py` file", "'percent_of_file.py'"),
        ("See shop/percent.py for it.", "'shop/percent.py'"),
        ("In `shop/prices.py:10-12`.", "'shop/prices.py:10-12'"),  # a bare path is judged too
        ("Use `PriceList.grand_total` instead.", "'PriceList.grand_total'"),
        ("It calls `compute_discount`.", "'compute_discount'"),
        ("##begin_quote##Parameters: amount##end_quote##\n<ANSWER>: `amount`", "quotes text"),
    ],
)
def test_hallucinated_answers(answer: str, why: str) -> None:
    reason = hallucination(answer, DOC, NAMES)
    assert reason is not None and why in reason


def test_words_of_the_prompt_are_grounded_and_closed_book_quotes_are_not() -> None:
    # the user named `discount` in the question: echoing it is not an invention
    assert hallucination("`discount` is not in this repo.", "What is `discount`?", NAMES) is None
    quote = "##begin_quote##Return type: int##end_quote##\n<ANSWER>: `int`"
    assert hallucination(quote, DOC, NAMES) is None
    reason = hallucination(quote, "What does percent_of return?", NAMES)
    assert reason is not None and reason.startswith("quotes text not in its prompt")
