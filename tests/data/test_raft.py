from __future__ import annotations

import random

import pytest

from guardian.core.schema import Chunk
from guardian.data.raft import (
    ANSWER_TAG,
    DEFAULT_INSTRUCTION,
    Doc,
    OracleSchedule,
    assemble,
    chunk_document,
    fallback_cot,
    final_answer,
    module_document,
    plan_pools,
    question_of,
    quotes_in,
    raft_input,
    raft_output,
    sample_rng,
    ungrounded_quotes,
)

B, E = "##begin_quote##", "##end_quote##"

DOC = """Reserve stock for an order.

Holds the quantity until the order ships
or is cancelled.

Args:
    qty: How many.

Raises:
    OutOfStock: when fewer than qty are free.

Returns:
    The reservation id."""


def make_chunk(**overrides: object) -> Chunk:
    data: dict[str, object] = {
        "id": "c1",
        "repo": "shop",
        "commit": "abc",
        "path": "shop/stock.py",
        "language": "python",
        "kind": "method",
        "name": "reserve",
        "qualname": "Stock.reserve",
        "signature": "def reserve(self, qty: int) -> str",
        "docstring": DOC,
        "code": "def reserve(self, qty: int) -> str:\n    return 'r1'",
        "start_line": 40,
        "end_line": 60,
        "content_hash": "h1",
    }
    data.update(overrides)
    return Chunk.model_validate(data)


def test_quotes_are_parsed_and_broken_markers_detected() -> None:
    assert quotes_in(f"a {B}one{E} b {B}two\nlines{E}") == ["one", "two\nlines"]
    assert quotes_in("no quotes") == []
    assert quotes_in(f"{B}open only") is None
    assert quotes_in(f"stray {E} end") is None
    assert quotes_in(f"{B}a {B}nested{E}{E}") is None
    assert quotes_in(f"{E}{B}x{E}") is None


def test_grounding_ignores_whitespace_but_not_words() -> None:
    oracle = "shop/stock.py:40-60\nHolds the quantity until the order ships\nor is cancelled."
    good = f"It says {B}the order ships or  is\n cancelled.{E}\n{ANSWER_TAG} x"
    assert ungrounded_quotes(good, [oracle]) == []
    bad = f"{B}until the order is paid{E} {B}Holds the quantity{E}"
    assert ungrounded_quotes(bad, [oracle]) == ["until the order is paid"]
    assert ungrounded_quotes(f"{B}  {E}", [oracle]) == ["  "]
    assert ungrounded_quotes(f"{B}x", [oracle]) is None
    assert ungrounded_quotes(f"{B}Holds{E}", ["other", oracle]) == []


def test_answer_and_question_round_trip() -> None:
    out = raft_output(f"Because {B}x{E}.", "```python\nreturn 1\n```")
    assert out == f"Because {B}x{E}.\n{ANSWER_TAG} ```python\nreturn 1\n```"
    assert final_answer(out) == "```python\nreturn 1\n```"
    assert final_answer("no tag") is None
    assert final_answer(f"{ANSWER_TAG}   ") is None
    text = raft_input(["doc one", "doc two"], "What is it?\n\nDetails")
    assert text == "Documents:\n[1] doc one\n\n[2] doc two\n\nQuestion: What is it?\n\nDetails"
    assert question_of(text) == "What is it?\n\nDetails"
    assert question_of("Plain question?") == "Plain question?"
    assert raft_input([], "q").startswith("Documents:\n(none)")
    assert ANSWER_TAG in DEFAULT_INSTRUCTION


def test_chunk_document_forms() -> None:
    chunk = make_chunk()
    compact = chunk_document(chunk, max_summary_chars=15, called_by=["Order.place", "Cart.add"])
    # the facts a question asks for are labelled lines, quotable one at a time
    assert compact.splitlines() == [
        "shop/stock.py:40-60 method Stock.reserve",
        "def reserve(self, qty: int) -> str",
        "Parameters: qty",
        "Return type: str",
        "Called by: Cart.add, Order.place",
        "Reserve stock ...",
    ]
    full = chunk_document(chunk, sections=("raises", "returns"), max_summary_chars=None)
    assert full.splitlines()[4:] == [
        "Reserve stock for an order.",
        "Raises: OutOfStock: when fewer than qty are free.",
        "Returns: The reservation id.",
    ]
    assert "def reserve(self, qty: int) -> str:\n    return 'r1'" in chunk_document(
        chunk, code=True
    )
    bare = chunk_document(make_chunk(docstring=None, signature="def reserve(self)"))
    assert bare == "shop/stock.py:40-60 method Stock.reserve\ndef reserve(self)"
    facts = {"outline": "class Stock\ndef level(sku)", "defines_line": "Defines: Stock, level"}
    assert module_document("shop/stock.py", facts) == (
        "shop/stock.py module shop.stock\nDefines: Stock, level\nclass Stock\ndef level(sku)"
    )
    assert fallback_cot(Doc("c1", bare)) == (
        f"The relevant document is {B}shop/stock.py:40-60 method Stock.reserve{E}."
    )


def test_oracle_schedule_hits_the_fraction_per_split_and_is_not_periodic() -> None:
    schedule = OracleSchedule(0.8)
    rng = random.Random(3)
    draws: dict[str, list[bool]] = {"train": [], "test": []}
    for i in range(1000):
        split = "train" if i % 3 else "test"
        draws[split].append(schedule.draw(split, rng.random()))
        for flags in draws.values():
            if flags:
                assert abs(sum(flags) - 0.8 * len(flags)) <= 1.0
    train = draws["train"]
    misses = [i for i, kept in enumerate(train) if not kept]
    assert len({b - a for a, b in zip(misses, misses[1:], strict=False)}) > 2
    assert all(OracleSchedule(1.0).draw("train", 0.999) for _ in range(10))
    assert not any(OracleSchedule(0.0).draw("train", 0.0) for _ in range(10))


def test_assemble_with_and_without_oracle() -> None:
    oracle = Doc("o", "ORACLE " * 10)
    cands = [Doc(f"d{i}", f"distractor {i} " * 5) for i in range(5)]
    text, ids = assemble("Q?", oracle, cands, k=3, has_oracle=True, max_chars=10_000,
                         rng=random.Random(0))  # fmt: skip
    assert ids == ["d0", "d1", "d2"]
    assert oracle.text in text and text.count("\n[") == 4 and text.endswith("Question: Q?")
    text, ids = assemble("Q?", oracle, cands, k=3, has_oracle=False, max_chars=10_000,
                         rng=random.Random(0))  # fmt: skip
    assert ids == ["d0", "d1", "d2", "d3"] and oracle.text not in text


def test_assemble_trims_farthest_distractors_to_the_budget() -> None:
    oracle = Doc("o", "x" * 100)
    cands = [Doc(f"d{i}", "y" * 100) for i in range(3)]
    _, ids = assemble("Q", oracle, cands, k=3, has_oracle=True, max_chars=250,
                      rng=random.Random(0))  # fmt: skip
    assert ids == ["d0"]
    text, ids = assemble("Q", oracle, cands, k=3, has_oracle=True, max_chars=50,
                         rng=random.Random(0))  # fmt: skip
    assert ids == [] and oracle.text in text
    _, ids = assemble("Q", oracle, cands, k=3, has_oracle=False, max_chars=50,
                      rng=random.Random(0))  # fmt: skip
    assert ids == ["d0"]


def test_assemble_shuffles_deterministically() -> None:
    oracle = Doc("o", "ORACLE")
    cands = [Doc(f"d{i}", f"D{i}") for i in range(3)]
    positions = set()
    for key in range(20):
        text, _ = assemble("Q", oracle, cands, k=3, has_oracle=True, max_chars=1000,
                           rng=sample_rng(0, str(key)))  # fmt: skip
        again, _ = assemble("Q", oracle, cands, k=3, has_oracle=True, max_chars=1000,
                            rng=sample_rng(0, str(key)))  # fmt: skip
        assert text == again
        positions.add(text.index("ORACLE"))
    assert len(positions) == 4


def test_pools_merge_small_directories_upward() -> None:
    counts = {
        "pkg/a.py": 30,
        "pkg/b.py": 40,
        "pkg/tiny/c.py": 3,
        "pkg/big/d.py": 80,
        "top.py": 2,
    }
    pools = plan_pools(counts, min_pool=50, max_pool=1000)
    assert pools == {
        "pkg/a.py": "pkg",
        "pkg/b.py": "pkg",
        "pkg/tiny/c.py": "pkg",
        "pkg/big/d.py": "pkg/big",
        "top.py": "",
    }
    assert plan_pools(dict(reversed(counts.items())), 50, 1000) == pools


def test_pools_cut_big_directories_into_runs_of_whole_files() -> None:
    counts = {f"lib/m{i}.py": 40 for i in range(5)}
    pools = plan_pools(counts, min_pool=1, max_pool=100)
    assert pools == {
        "lib/m0.py": "lib#0000",
        "lib/m1.py": "lib#0000",
        "lib/m2.py": "lib#0001",
        "lib/m3.py": "lib#0001",
        "lib/m4.py": "lib#0002",
    }
    assert plan_pools({"lib/huge.py": 500}, 1, 100) == {"lib/huge.py": "lib"}


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_rng_is_stable(seed: int) -> None:
    assert sample_rng(seed, "a", "b").random() == sample_rng(seed, "a", "b").random()
    assert sample_rng(seed, "a", "b").random() != sample_rng(seed, "ab").random()


def test_split_documents_inverts_raft_input() -> None:
    from guardian.data.raft import raft_input, split_documents

    docs = ["a.py:1-2 function f\ndef f()", "b.py:3-4 function g\n\n[9] not a new document"]
    text = raft_input(docs, "Where is `f`?")
    assert split_documents(text) is None  # "\n\n[9] " inside a document is ambiguous
    plain = ["a.py:1-2 function f\ndef f()", "b.py:3-4 function g\ndef g(x)"]
    assert split_documents(raft_input(plain, "Where?")) == (plain, "Where?")
    assert split_documents(raft_input([], "Where?")) == ([], "Where?")
    assert split_documents("Where is `f`?") is None


def test_drop_distractors_keeps_the_oracle_and_stops_once_it_fits() -> None:
    from guardian.core.schema import Sample
    from guardian.data.raft import drop_distractors, raft_input, split_documents

    oracle = "a.py:1-2 function f\ndef f()"
    docs = ["z.py:1-9 function noise\n" + "x " * 50, oracle, "y.py:1-9 function more\n" + "y " * 50]
    sample = Sample(
        input=raft_input(docs, "Where is `f`?"), output="a.py", metadata={"oracle": [oracle]}
    )
    same, none = drop_distractors(sample, lambda s: True)
    assert same is sample and none == 0
    one, dropped = drop_distractors(sample, lambda s: len(s.input) < 200)
    assert dropped == 1 and split_documents(one.input) == (docs[:2], "Where is `f`?")
    bare, dropped = drop_distractors(sample, lambda s: len(s.input) < 10)
    assert dropped == 2 and split_documents(bare.input) == ([oracle], "Where is `f`?")
    assert sample.input == raft_input(docs, "Where is `f`?")  # the input sample is unchanged
