from __future__ import annotations

import pytest

from guardian.evaluation.metrics import answer_tokens, exact_match, final_answer, token_f1


def test_final_answer_takes_text_after_the_last_tag() -> None:
    assert final_answer("reasoning <ANSWER>: one <ANSWER>: two ") == "two"
    assert final_answer("  plain answer ") == "plain answer"
    assert final_answer("quoted <ANSWER>:   ") == ""


def test_normalisation_drops_case_quotes_punctuation_and_articles() -> None:
    assert answer_tokens("The file is `Inventory/money.py`.") == [
        "file", "is", "inventory", "money", "py"
    ]  # fmt: skip
    assert answer_tokens('"percent_of", an int') == ["percent_of", "int"]


def test_exact_match_compares_final_answers_only() -> None:
    ref = "##begin_quote##Return type: int##end_quote##\n<ANSWER>: `int`"
    assert exact_match("##begin_quote##something else##end_quote##\n<ANSWER>: int.", ref)
    assert exact_match("<ANSWER>: INT", ref)
    assert not exact_match("<ANSWER>: `str`", ref)
    assert not exact_match("", "")  # an empty reference matches nothing


@pytest.mark.parametrize(
    ("answer", "reference", "f1"),
    [
        ("<ANSWER>: cents and percent", "<ANSWER>: cents, percent", 0.8),  # p 2/3, r 1
        ("cents", "cents, percent", 2 / 3),  # p 1, r 1/2
        ("sku", "cents, percent", 0.0),
        ("`a_b` `a_b`", "a_b", 2 / 3),  # bags count repeats: p 1/2, r 1
    ],
)
def test_token_f1(answer: str, reference: str, f1: float) -> None:
    assert token_f1(answer, reference) == pytest.approx(f1)
