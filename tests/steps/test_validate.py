from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from guardian.core.jsonl import read_jsonl, write_jsonl
from guardian.core.schema import Sample
from guardian.data.checks import REASONS, LeakIndex, code_blocks, dedupe_key
from guardian.data.raft import raft_input, raft_output
from guardian.errors import DataError
from guardian.steps.base import StepContext
from guardian.steps.validate import SPEC, Params, run, validate_data

SPLITS = ("train", "val", "test")

CODE_A = "def total(items):\n    return sum(i.price for i in items)"
CODE_B = "def first(items):\n    return items[0]"
ORACLE = "shop/cart.py:3-9 function total\ndef total(items)\nSum the prices of the items."
B, E = "##begin_quote##", "##end_quote##"


def sample(inp: str, out: str, qt: str = "explain", instruction: str | None = None) -> Sample:
    return Sample(instruction=instruction, input=inp, output=out, metadata={"question_type": qt})


def raft(
    question: str = "What does `total` do?",
    quote: str = "Sum the prices",
    has_oracle: bool = True,
    docs: list[str] | None = None,
    **meta: Any,
) -> Sample:
    context = docs if docs is not None else ([ORACLE] if has_oracle else []) + ["other doc"]
    return Sample(
        instruction="Quote, then answer.",
        input=raft_input(context, question),
        output=raft_output(f"It says {B}{quote}{E}.", "It sums the prices."),
        metadata={
            "question_type": "explain",
            "chunk_id": "c-total",
            "oracle_ids": ["c-total"],
            "distractor_ids": ["c-other"],
            "has_oracle": has_oracle,
            "oracle": [ORACLE],
            **meta,
        },
    )


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def write_dataset(
    root: Path, train: list[Sample], val: list[Sample] | None, test: list[Sample] | None
) -> Path:
    src = root / "dataset"
    for name, items in (("train", train), ("val", val or []), ("test", test or [])):
        write_jsonl(src / f"{name}.jsonl", items)
    return src


def run_on(
    tmp_path: Path,
    train: list[Sample],
    val: list[Sample] | None = None,
    test: list[Sample] | None = None,
    params: Params | None = None,
) -> tuple[dict[str, list[Sample]], dict[str, Any]]:
    src = write_dataset(tmp_path, train, val, test)
    out = tmp_path / "out"
    out.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=out, home=tmp_path, inputs={"dataset": src})
    result = run(ctx, params or Params())
    assert sorted(result.outputs) == ["card.json", "test.jsonl", "train.jsonl", "val.jsonl"]
    kept = {s: list(read_jsonl(out / f"{s}.jsonl", Sample)) for s in SPLITS}
    return kept, json.loads((out / "card.json").read_text())


def test_spec_wiring() -> None:
    assert (SPEC.name, SPEC.fn, SPEC.params) == ("validate", run, Params)
    assert SPEC.needs == ("dataset",) and SPEC.provides == "dataset" and SPEC.version == "2"


def test_clean_dataset_passes_through_unchanged(tmp_path: Path) -> None:
    train = [sample("q1", "answer one"), sample("q2", fenced(CODE_A), "complete")]
    val = [sample("q3", "answer three", "locate")]
    test = [sample("q4", "answer four")]
    kept, card = run_on(tmp_path, train, val, test)
    assert kept == {"train": train, "val": val, "test": test}
    assert card["kept"] == {"train": 2, "val": 1, "test": 1}
    assert set(card["dropped"]) == set(REASONS) and set(card["dropped"].values()) == {0}
    assert card["question_types"] == {
        "train": {"complete": 1, "explain": 1},
        "val": {"locate": 1},
        "test": {"explain": 1},
    }
    assert card["question_type_totals"] == {"complete": 1, "explain": 2, "locate": 1}


def test_empty_and_too_short_samples_are_dropped(tmp_path: Path) -> None:
    train = [
        sample("q", "   \n"),
        sample("  ", "an answer"),
        sample("q", "tiny"),
        sample("q", "long enough"),
    ]
    kept, card = run_on(tmp_path, train)
    assert [s.output for s in kept["train"]] == ["long enough"]
    assert card["dropped"]["empty"] == 2 and card["dropped"]["too_short"] == 1


def test_too_long_samples_are_dropped(tmp_path: Path) -> None:
    params = Params(max_input_chars=20, max_output_chars=12, min_output_chars=2)
    train = [
        sample("x" * 15, "ok", instruction="y" * 6),
        sample("short", "z" * 13),
        sample("short", "fine"),
    ]
    kept, card = run_on(tmp_path, train, params=params)
    assert [s.output for s in kept["train"]] == ["fine"]
    assert card["dropped"]["input_too_long"] == 1
    assert card["dropped"]["output_too_long"] == 1


def test_duplicates_ignore_whitespace_and_keep_the_evaluation_copy(tmp_path: Path) -> None:
    shared = sample("What does  `f` do?", "It adds numbers.")
    train = [
        sample("What does `f` do?", "It  adds\nnumbers.\n"),
        sample("q", "answer a"),
        sample("q", "answer a"),
        sample("other", "another answer"),
    ]
    kept, card = run_on(tmp_path, train, val=[shared], test=[shared.model_copy()])
    assert kept["test"] == [shared]
    assert kept["val"] == []
    assert [s.input for s in kept["train"]] == ["q", "other"]
    assert card["dropped"]["duplicate"] == 3
    zero = dict.fromkeys(REASONS, 0)
    assert card["dropped_by_split"] == {
        "test": zero,
        "val": {**zero, "duplicate": 1},
        "train": {**zero, "duplicate": 2},
    }


def test_dedupe_can_be_switched_off(tmp_path: Path) -> None:
    train = [sample("q", "answer a"), sample("q", "answer a")]
    kept, _ = run_on(tmp_path, train, params=Params(dedupe=False, near_duplicates=False))
    assert len(kept["train"]) == 2


def test_duplicate_key_covers_instruction_but_not_the_raft_context() -> None:
    assert dedupe_key(sample("q", "a", instruction="x")) != dedupe_key(sample("q", "a"))
    assert dedupe_key(sample(" q\n", "a  b")) == dedupe_key(sample("q", "a b"))
    assert dedupe_key(raft(docs=[ORACLE, "one"])) == dedupe_key(raft(docs=["two", ORACLE]))


def test_near_duplicates_are_dropped(tmp_path: Path) -> None:
    text = (
        "The cart total is the sum of every item price in the cart, after the discounts of "
        "each line have been applied and before any shipping costs are added."
    )
    train = [
        sample("How is the cart total computed?", text),
        sample("How is the cart total computed ?", text.replace("added.", "added!")),
        sample("How is shipping computed?", "Shipping is a flat fee per parcel by weight."),
    ]
    kept, card = run_on(tmp_path, train)
    assert len(kept["train"]) == 2 and card["dropped"]["near_duplicate"] == 1
    kept, _ = run_on(tmp_path / "off", train, params=Params(near_duplicates=False))
    assert len(kept["train"]) == 3


def test_ungrounded_quotes_are_dropped_and_counted(tmp_path: Path) -> None:
    train = [raft(), raft(question="Q2", quote="Sum  the\nprices of the items")]
    train += [raft(question="Q3", quote="Multiply the prices")]
    kept, card = run_on(tmp_path, train)
    assert [s.input.rsplit("Question: ", 1)[1] for s in kept["train"]] == [
        "What does `total` do?",
        "Q2",
    ]
    assert card["dropped"]["ungrounded"] == 1
    assert card["quotes"] == {"checked": 3, "ungrounded": 1}


def test_quotes_without_an_oracle_are_ungrounded(tmp_path: Path) -> None:
    train = [sample("q", f"It says {B}anything{E}."), sample("q2", "no quotes here")]
    kept, card = run_on(tmp_path, train)
    assert [s.input for s in kept["train"]] == ["q2"]
    assert card["dropped"]["ungrounded"] == 1


def test_raft_format_and_context_checks(tmp_path: Path) -> None:
    no_tag = raft(question="no tag")
    no_tag.output = f"It says {B}Sum the prices{E}."
    no_quote = raft(question="no quote")
    no_quote.output = raft_output("It sums.", "x")
    broken = raft(question="broken")
    broken.output = f"{B}Sum the prices\n<ANSWER>: x"
    missing = raft(question="missing oracle", docs=["other doc"], has_oracle=True)
    leaked = raft(question="oracle present", docs=[ORACLE], has_oracle=False)
    kept, card = run_on(tmp_path, [raft(), no_tag, no_quote, broken, missing, leaked])
    assert len(kept["train"]) == 1
    assert card["dropped"]["format"] == 3 and card["dropped"]["bad_context"] == 2


def test_train_code_leaking_into_test_outputs_is_dropped(tmp_path: Path) -> None:
    test = [sample("Write `total`.", f"Here it is:\n{fenced(CODE_A)}\nDone.", "complete")]
    train = [
        sample("Write `total` again.", fenced(CODE_A), "complete"),
        sample("Write `first`.", fenced(CODE_B), "complete"),
        sample("Sig of total?", fenced("def total(items)"), "signature"),
        sample(f"Summarise:\n{fenced(CODE_A)}", "It sums prices.", "document"),
    ]
    kept, card = run_on(tmp_path, train, test=test)
    assert [s.input for s in kept["train"]] == ["Write `first`.", "Sig of total?"]
    assert card["dropped"]["leak"] == 2
    assert kept["test"] == test


def test_train_code_containing_a_test_block_is_a_leak(tmp_path: Path) -> None:
    test = [sample("Write `total`.", fenced(CODE_A), "complete")]
    bigger = f"class Cart:\n{CODE_A}\n\ndef other():\n    return 2"
    kept, card = run_on(
        tmp_path, [sample("Write Cart.", fenced(bigger)), sample("q", "an answer")], test=test
    )
    assert [s.input for s in kept["train"]] == ["q"] and card["dropped"]["leak"] == 1


def test_test_chunks_in_a_training_context_are_a_leak(tmp_path: Path) -> None:
    test = [raft(chunk_id="c-held", oracle_ids=["c-held"])]
    train = [
        raft(question="uses held-out chunk", distractor_ids=["c-held"], chunk_id="c-a"),
        raft(question="fine", distractor_ids=["c-b"], chunk_id="c-a", oracle_ids=["c-a"]),
    ]
    kept, card = run_on(tmp_path, train, test=test)
    assert [s.input.rsplit("Question: ", 1)[1] for s in kept["train"]] == ["fine"]
    assert card["dropped"]["leak"] == 1


def test_leaks_only_checked_against_test_not_val(tmp_path: Path) -> None:
    val = [sample("Write it.", fenced(CODE_A), "complete")]
    train = [sample("Write `total`.", fenced(CODE_A), "complete")]
    kept, card = run_on(tmp_path, train, val=val, params=Params(dedupe=False))
    assert len(kept["train"]) == 1 and card["dropped"]["leak"] == 0


def test_leak_index_finds_blocks_inside_longer_code() -> None:
    bigger = (
        "class Cart:\n    def total(self):\n        return 1\n\n"
        "    def size(self):\n        x = 1\n        return x"
    )
    index = LeakIndex([fenced(bigger)])
    inner = "    def size(self):\n        x = 1\n        return x"
    assert index.leaks(fenced(inner))
    assert index.leaks(fenced("    def total(self):\n        return 1"))
    assert index.leaks(fenced(f"# header\n{bigger}\n# footer"))
    assert not index.leaks(fenced("    def size(self):\n        x = 2\n        return x"))
    assert not index.leaks(fenced("return 1"))
    assert not index.leaks("    def total(self):\n        return 1")


def test_code_blocks() -> None:
    text = "a\n```python\nx = 1\ny = 2\n```\nb\n```\nz\n```"
    assert code_blocks(text) == ["x = 1\ny = 2", "z"]
    assert code_blocks("no code") == []


def test_card_reports_oracle_fraction_tokens_and_examples(tmp_path: Path) -> None:
    train = [raft(question=f"Q{i}?", has_oracle=i % 5 != 0) for i in range(20)]
    src = write_dataset(tmp_path, train, None, None)
    (src / "card.json").write_text(json.dumps({"params": {"raft": True, "oracle_fraction": 0.8}}))
    out = tmp_path / "out"
    ctx = StepContext(repo=tmp_path, out_dir=out, home=tmp_path, inputs={"dataset": src})
    params = Params(near_duplicates=False)
    result = run(ctx, params)
    card = json.loads((out / "card.json").read_text())
    assert card["oracle"]["train"] == {
        "with_oracle": 16,
        "without_oracle": 4,
        "fraction": 0.8,
        "samples": 20,
    }
    assert result.metrics["oracle_fraction"] == 0.8 and result.metrics["ungrounded_quotes"] == 0
    assert card["synthesis"] == {"raft": True, "oracle_fraction": 0.8}
    hist = card["tokens"]["total"]
    assert sum(hist["counts"]) == 20 and len(hist["counts"]) == len(hist["edges"])
    assert 0 < hist["p50"] <= hist["p95"] <= hist["max"]
    assert len(card["examples"]) == 5
    assert all(ex["split"] == "train" and ex["output"] for ex in card["examples"])
    again = tmp_path / "again"
    run(StepContext(repo=tmp_path, out_dir=again, home=tmp_path, inputs={"dataset": src}), params)
    assert (again / "card.json").read_bytes() == (out / "card.json").read_bytes()


def test_schema_error_names_file_line_and_field(tmp_path: Path) -> None:
    src = tmp_path / "dataset"
    write_jsonl(src / "train.jsonl", [sample("q", "an answer")])
    write_jsonl(src / "test.jsonl", [])
    val = src / "val.jsonl"
    val.write_text(json.dumps({"input": "q", "output": "a"}) + "\n" + json.dumps({"input": "q"}))
    ctx = StepContext(repo=tmp_path, out_dir=tmp_path / "o", home=tmp_path, inputs={"dataset": src})
    with pytest.raises(DataError) as info:
        run(ctx, Params())
    assert str(info.value) == f"{val}:2: output: Field required"


def test_invalid_json_and_missing_split(tmp_path: Path) -> None:
    src = tmp_path / "dataset"
    write_jsonl(src / "train.jsonl", [sample("q", "an answer")])
    ctx = StepContext(repo=tmp_path, out_dir=tmp_path / "o", home=tmp_path, inputs={"dataset": src})
    with pytest.raises(DataError, match=r"val\.jsonl: file not found"):
        run(ctx, Params())
    (src / "val.jsonl").write_text("")
    (src / "test.jsonl").write_text('{"input": "q", "output": "an answer"}\n{not json\n')
    with pytest.raises(DataError, match=r"test\.jsonl:2: invalid JSON"):
        run(ctx, Params())


def test_validate_data_reports_bad_lines_and_routes_a_single_file_by_split(
    tmp_path: Path,
) -> None:
    path = tmp_path / "samples.jsonl"
    rows = [
        json.dumps(sample("q1", "answer one").model_dump()),
        "{broken",
        json.dumps({"input": "q2"}),
        json.dumps(
            Sample(input="q3", output="answer three", metadata={"split": "test"}).model_dump()
        ),
        json.dumps(
            Sample(input="q4", output="answer four", metadata={"split": "bogus"}).model_dump()
        ),
        json.dumps(
            Sample(input="q5", output="answer five", metadata={"split": "val"}).model_dump()
        ),
    ]
    path.write_text("\n".join(rows) + "\n")
    card_out = tmp_path / "card.json"
    card, kept = validate_data(path, card_out=card_out)
    assert kept == {"train": 2, "val": 1, "test": 1}
    assert card["schema_errors"] == {
        "count": 2,
        "first": [
            f"{path}:2: invalid JSON (Expecting property name enclosed in double quotes)",
            f"{path}:3: output: Field required",
        ],
    }
    assert card["dropped"]["schema"] == 2
    assert json.loads(card_out.read_text()) == card
    assert not (tmp_path / "train.jsonl").exists()


def test_validate_data_on_a_dataset_dir(tmp_path: Path) -> None:
    src = write_dataset(
        tmp_path, [raft()], None, [raft(question="held out", chunk_id="c-t", oracle_ids=["c-t"])]
    )
    (src / "val.jsonl").unlink()
    card, kept = validate_data(src)
    assert kept == {"train": 1, "val": 0, "test": 1}
    assert card["quotes"] == {"checked": 2, "ungrounded": 0}
    with pytest.raises(DataError, match="no train.jsonl, val.jsonl or test.jsonl"):
        validate_data(tmp_path)
    with pytest.raises(DataError, match="file not found"):
        validate_data(tmp_path / "nope.jsonl")


def test_empty_train_after_validation_is_a_data_error(tmp_path: Path) -> None:
    test = [sample("q", "an answer")]
    train = [sample("q", "an answer"), sample("q2", " ")]
    with pytest.raises(DataError) as info:
        run_on(tmp_path, train, test=test)
    assert str(info.value) == (
        "no training samples left after validation (dropped: empty=1, duplicate=1)"
    )
    assert not (tmp_path / "out" / "train.jsonl").exists()
    assert not list((tmp_path / "out").iterdir())
