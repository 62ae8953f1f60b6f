"""RAFT contexts are sized in tokens: distractors go before any answer token is cut."""

from __future__ import annotations

from typing import Any

import pytest

from guardian.core.schema import Sample
from guardian.data.raft import raft_input
from guardian.ml.prompting import encode_example
from guardian.steps.encoding import encode_fitted
from tests.tinymodel import smollm2_tokenizer_dir

ORACLE = "inventory/money.py:1-3 function to_cents\ndef to_cents(amount: str) -> int"
ANSWER = (
    "##begin_quote##def to_cents(amount: str) -> int##end_quote##\n<ANSWER>: " + "`amount` " * 20
)


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir()))


def _sample(n_noise: int) -> Sample:
    noise = [f"pkg/n{i}.py:1-9 function n{i}\n" + "filler words here " * 20 for i in range(n_noise)]
    docs = [noise[0], ORACLE, *noise[1:]]
    return Sample(
        input=raft_input(docs, "What arguments does `to_cents` take?"),
        output=ANSWER,
        metadata={"oracle": [ORACLE]},
    )


def test_distractors_are_dropped_so_the_whole_answer_fits(tok: Any) -> None:
    long = _sample(4)
    plain = encode_example(tok, long, max_len=256)
    assert plain.truncated  # the prompt alone is longer than max_len
    (ex,), counts = encode_fitted(tok, [long], max_len=256)
    assert counts == {"contexts_shrunk": 1, "truncated": 0, "answers_cut": 0}
    text = tok.decode(ex.input_ids)
    assert ORACLE in text and "What arguments does `to_cents` take?" in text
    assert ex.answer_tokens == encode_example(tok, long, max_len=4096).answer_tokens
    assert len(ex.input_ids) <= 256


def test_samples_that_fit_or_are_not_raft_are_left_alone(tok: Any) -> None:
    short = _sample(1)
    plain = Sample(input="x = 1\n" * 300, output="It sets x.")
    (a, b), counts = encode_fitted(tok, [short, plain], max_len=256)
    assert a == encode_example(tok, short, max_len=256) and not a.truncated
    assert b == encode_example(tok, plain, max_len=256) and b.truncated and not b.answer_cut
    assert counts == {"contexts_shrunk": 0, "truncated": 1, "answers_cut": 0}
