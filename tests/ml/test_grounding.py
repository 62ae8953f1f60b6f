from __future__ import annotations

from typing import Any

import pytest

from guardian.core.schema import BEGIN_QUOTE, END_QUOTE
from guardian.ml.grounding import QuoteGrounding, open_quote, quote_may_continue
from tests.tinymodel import smollm2_tokenizer_dir

SOURCE = "[1] inventory/catalog.py:10-12 method Catalog.add\nCalled by: Catalog.__init__"


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir()))


def test_open_quote_is_the_text_after_an_unclosed_marker() -> None:
    assert open_quote("no quote here") is None
    assert open_quote(f"{BEGIN_QUOTE}Called by") == "Called by"
    assert open_quote(f"{BEGIN_QUOTE}a{END_QUOTE} then") is None
    assert open_quote(f"{BEGIN_QUOTE}a{END_QUOTE}{BEGIN_QUOTE}b") == "b"
    assert open_quote(BEGIN_QUOTE) == ""


def test_a_quote_may_only_grow_into_text_of_the_source() -> None:
    assert quote_may_continue("Called by: Catalog", ".__", SOURCE)
    assert not quote_may_continue("Called by: Catalog.", "init", SOURCE)
    assert not quote_may_continue("", "inventory/models.py", SOURCE)
    assert quote_may_continue("", "inventory", SOURCE)


def test_the_closing_marker_is_allowed_only_after_a_grounded_quote() -> None:
    assert quote_may_continue("Called by: Catalog.__init__", "##", SOURCE)
    assert quote_may_continue("Called by: Catalog.__init__##", "end", SOURCE)
    assert not quote_may_continue("Called by: Catalog.__init__##", "begin", SOURCE)
    assert quote_may_continue("Called by: Catalog.__init__##end_quote", "##", SOURCE)
    assert not quote_may_continue("Called by: Catalog.init", "##", SOURCE)


def test_the_processor_masks_a_misquote_and_keeps_the_grounded_token(tok: Any) -> None:
    import torch

    prompt = tok.encode("Question", add_special_tokens=False)
    grounded_id = tok.encode(".__", add_special_tokens=False)[0]
    wrong_id = tok.encode("x", add_special_tokens=False)[0]
    assert tok.decode([grounded_id]) == ".__"
    for generated, inside in ((f"{BEGIN_QUOTE}Called by: Catalog", True), ("It is Catalog", False)):
        ids = prompt + tok.encode(generated, add_special_tokens=False)
        scores = torch.zeros((1, len(tok)))
        scores[0, wrong_id] = 5.0
        scores[0, grounded_id] = 4.0
        proc = QuoteGrounding(tok, [SOURCE], len(prompt))
        out = proc(torch.tensor([ids]), scores)
        assert int(out[0].argmax()) == (grounded_id if inside else wrong_id)
        assert bool(out[0, wrong_id] == -torch.inf) is inside
        assert proc.constrained_steps == int(inside)


def test_with_no_fitting_candidate_the_quote_is_closed(tok: Any) -> None:
    import torch

    gen = tok.encode(f"{BEGIN_QUOTE}Called by: Catalog.__init__", add_special_tokens=False)
    scores = torch.zeros((1, len(tok)))
    proc = QuoteGrounding(tok, [SOURCE], 0, top_k=4)
    out = proc(torch.tensor([gen]), scores)
    closing = tok.decode([int(out[0].argmax())])
    assert END_QUOTE.startswith(closing)
    assert int((out[0] > -torch.inf).sum()) == 1
