from __future__ import annotations

from pathlib import Path

import pytest

from guardian.core.jsonl import write_jsonl
from guardian.core.schema import Sample
from guardian.data.card import TOKEN_EDGES, CardBuilder, SplitWriter, approx_tokens, summary_lines


def make(i: int, has_oracle: bool | None = None) -> Sample:
    meta: dict[str, object] = {"question_type": "explain" if i % 2 else "where", "n": i}
    if has_oracle is not None:
        meta["has_oracle"] = has_oracle
    return Sample(
        instruction="Answer.", input=f"Question {i} " * (i + 1), output="ü" * 5, metadata=meta
    )


def test_split_writer_matches_write_jsonl_byte_for_byte(tmp_path: Path) -> None:
    samples = [make(i) for i in range(3)]
    with SplitWriter(tmp_path / "a") as out:
        for s in samples:
            out.write("train", s)
        out.write("test", samples[0])
    write_jsonl(tmp_path / "b" / "train.jsonl", samples)
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (
        tmp_path / "b" / "train.jsonl"
    ).read_bytes()
    assert (tmp_path / "a" / "val.jsonl").read_bytes() == b""
    assert out.counts == {"train": 3, "test": 1}
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "test.jsonl",
        "train.jsonl",
        "val.jsonl",
    ]


def test_split_writer_leaves_nothing_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), SplitWriter(tmp_path) as out:
        out.write("train", make(0))
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_approx_tokens() -> None:
    assert approx_tokens("def f(x): return x + 1") == 10
    assert approx_tokens("") == 0


def test_card_counts_histogram_and_reservoir(tmp_path: Path) -> None:
    card = CardBuilder(("empty", "leak"), seed=3, n_examples=2)
    for i in range(10):
        card.keep("train" if i < 8 else "test", make(i, has_oracle=i % 4 != 0))
    card.drop("train", "leak")
    card.count_quotes(4, 1)
    card.schema_error("f.jsonl:3: output: Field required")
    built = card.build({"extra": 1})
    assert built["read"] == {"train": 9, "val": 0, "test": 2}
    assert built["kept"] == {"train": 8, "val": 0, "test": 2}
    assert built["dropped"] == {"empty": 0, "leak": 1}
    assert built["question_types"]["train"] == {"explain": 4, "where": 4}
    assert built["question_type_totals"] == {"explain": 5, "where": 5}
    assert built["oracle"]["train"] == {
        "with_oracle": 6,
        "without_oracle": 2,
        "fraction": 0.75,
        "samples": 8,
    }
    assert built["oracle"]["val"]["fraction"] is None
    assert built["oracle"]["all"]["samples"] == 10
    assert built["quotes"] == {"checked": 4, "ungrounded": 1}
    assert built["schema_errors"] == {"count": 1, "first": ["f.jsonl:3: output: Field required"]}
    hist = built["tokens"]["prompt"]
    assert hist["edges"] == list(TOKEN_EDGES) and sum(hist["counts"]) == 10
    assert hist["max"] == approx_tokens("Answer.\n\n" + "Question 9 " * 10)
    assert len(built["examples"]) == 2 and built["extra"] == 1
    again = CardBuilder(("empty", "leak"), seed=3, n_examples=2)
    for i in range(10):
        again.keep("train" if i < 8 else "test", make(i, has_oracle=i % 4 != 0))
    assert again.build()["examples"] == built["examples"]
    other = CardBuilder(("empty", "leak"), seed=4, n_examples=2)
    for i in range(10):
        other.keep("train", make(i))
    assert [e["metadata"]["n"] for e in other.build()["examples"]] != [0, 1]


def test_summary_lines() -> None:
    card = CardBuilder(("empty", "leak"))
    card.keep("train", make(1, has_oracle=True))
    card.drop("test", "leak")
    card.count_quotes(2, 0)
    card.schema_error("f.jsonl:3: invalid JSON (x)")
    lines = summary_lines(card.build())
    assert lines[:5] == [
        "kept train 1/1, val 0/0, test 0/1",
        "dropped leak 1",
        "question types (1): explain 1",
        "oracle fraction 1.0 over 1 RAFT samples",
        "quotes checked 2, ungrounded 0",
    ]
    assert lines[-2:] == ["schema errors 1:", "  f.jsonl:3: invalid JSON (x)"]
