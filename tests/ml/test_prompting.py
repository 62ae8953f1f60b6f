from __future__ import annotations

from typing import Any

import pytest

from guardian.core.schema import Sample
from guardian.ml.prompting import IGNORE_INDEX, collate, encode_example, prompt_ids, user_text
from tests.tinymodel import smollm2_tokenizer_dir


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir()))


@pytest.fixture(scope="module")
def plain_tok() -> Any:
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(smollm2_tokenizer_dir()))
    plain.chat_template = None
    return plain


SAMPLE = Sample(instruction="Answer briefly.", input="What does `f` do?", output="It adds one.")


def test_user_text_joins_instruction_and_input() -> None:
    assert user_text(SAMPLE) == "Answer briefly.\n\nWhat does `f` do?"
    assert user_text(Sample(input="q", output="a")) == "q"
    assert user_text(Sample(instruction="  ", input="q", output="a")) == "q"


def test_labels_mask_exactly_the_prompt(tok: Any) -> None:
    ex = encode_example(tok, SAMPLE, max_len=256)
    prompt = prompt_ids(tok, SAMPLE)
    assert ex.input_ids[: ex.prompt_len] == prompt
    assert ex.labels[: ex.prompt_len] == [IGNORE_INDEX] * len(prompt)
    answer = ex.input_ids[ex.prompt_len :]
    assert ex.labels[ex.prompt_len :] == answer
    assert IGNORE_INDEX not in answer
    assert answer[-1] == tok.eos_token_id
    assert tok.decode(answer) == "It adds one.<|im_end|>"
    assert ex.answer_tokens == len(answer)
    assert not ex.truncated and ex.full_len == len(ex.input_ids)
    text = tok.decode(prompt)
    assert "<|im_start|>user\nAnswer briefly.\n\nWhat does `f` do?<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_fallback_format_without_chat_template(plain_tok: Any) -> None:
    ex = encode_example(plain_tok, SAMPLE, max_len=256)
    prompt_text = plain_tok.decode(ex.input_ids[: ex.prompt_len])
    assert "### Question:\nAnswer briefly.\n\nWhat does `f` do?\n\n### Answer:\n" in prompt_text
    assert plain_tok.decode(ex.input_ids[ex.prompt_len :]) == "It adds one.<|im_end|>"
    assert ex.labels[: ex.prompt_len] == [IGNORE_INDEX] * ex.prompt_len


def test_long_prompt_is_cut_from_the_middle(tok: Any) -> None:
    long = Sample(instruction="Read the code.", input="x = 1\n" * 400, output="It sets x.")
    full = encode_example(tok, long, max_len=4096)
    ex = encode_example(tok, long, max_len=64)
    assert ex.truncated and ex.full_len == len(full.input_ids) > 64
    assert len(ex.input_ids) == 64
    assert ex.input_ids[ex.prompt_len :] == full.input_ids[full.prompt_len :]
    head = ex.prompt_len // 2
    assert ex.input_ids[:head] == full.input_ids[:head]
    tail = ex.prompt_len - head
    assert (
        ex.input_ids[head : ex.prompt_len]
        == full.input_ids[full.prompt_len - tail : full.prompt_len]
    )
    assert tok.decode(ex.input_ids[: ex.prompt_len]).endswith("<|im_start|>assistant\n")


def test_long_answer_keeps_prompt_and_is_cut_from_the_right(tok: Any) -> None:
    long = Sample(input="Explain.", output="word " * 300)
    full = encode_example(tok, long, max_len=4096)
    assert full.prompt_len <= 160 // 4  # a prompt within its quarter is never cut
    ex = encode_example(tok, long, max_len=160)
    assert len(ex.input_ids) == 160 and ex.truncated and ex.answer_cut
    assert ex.prompt_len == full.prompt_len
    assert ex.input_ids == full.input_ids[:160]
    assert ex.answer_tokens == 160 - full.prompt_len


def test_both_long_keeps_a_quarter_for_the_prompt(tok: Any) -> None:
    long = Sample(input="y = 2\n" * 300, output="word " * 300)
    ex = encode_example(tok, long, max_len=128)
    assert len(ex.input_ids) == 128
    assert ex.prompt_len == 32 and ex.answer_tokens == 96 and ex.answer_cut


def test_a_long_prompt_never_cuts_an_answer_that_fits_in_three_quarters(tok: Any) -> None:
    answer = "word " * 60
    long = Sample(input="y = 2\n" * 300, output=answer)
    whole = encode_example(tok, Sample(input="q", output=answer), max_len=4096).answer_tokens
    assert 32 < whole <= 96  # more than the quarter the old rule kept, within three quarters
    ex = encode_example(tok, long, max_len=128)
    assert ex.truncated and not ex.answer_cut
    assert ex.answer_tokens == whole and len(ex.input_ids) == 128
    with pytest.raises(ValueError, match="max_len"):
        encode_example(tok, long, max_len=4)


def test_collate_pads_right_and_masks_padding(tok: Any) -> None:
    short = encode_example(tok, Sample(input="a", output="b"), max_len=256)
    longer = encode_example(tok, SAMPLE, max_len=256)
    batch = collate([short, longer], pad_id=tok.pad_token_id)
    width = len(longer.input_ids)
    assert batch["input_ids"].shape == (2, width)
    n = len(short.input_ids)
    assert batch["input_ids"][0, :n].tolist() == short.input_ids
    assert batch["input_ids"][0, n:].tolist() == [tok.pad_token_id] * (width - n)
    assert batch["labels"][0, n:].tolist() == [IGNORE_INDEX] * (width - n)
    assert batch["labels"][0, :n].tolist() == short.labels
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (width - n)
    assert batch["attention_mask"][1].tolist() == [1] * width
