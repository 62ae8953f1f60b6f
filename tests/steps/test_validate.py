from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardian.errors import DataError
from guardian.records import Sample, read_jsonl, write_jsonl
from guardian.steps.base import StepContext
from guardian.steps.validate import SPEC, LeakIndex, Params, code_blocks, dedupe_key, run

SPLITS = ("train", "val", "test")

CODE_A = "def total(items):\n    return sum(i.price for i in items)"
CODE_B = "def first(items):\n    return items[0]"


def sample(inp: str, out: str, qt: str = "explain", instruction: str | None = None) -> Sample:
    return Sample(instruction=instruction, input=inp, output=out, metadata={"question_type": qt})


def fenced(code: str) -> str:
    return f"```python\n{code}\n```"


def run_on(
    tmp_path: Path,
    train: list[Sample],
    val: list[Sample] | None = None,
    test: list[Sample] | None = None,
    params: Params | None = None,
) -> tuple[dict[str, list[Sample]], dict[str, object]]:
    src = tmp_path / "dataset"
    for name, items in (("train", train), ("val", val or []), ("test", test or [])):
        write_jsonl(src / f"{name}.jsonl", items)
    out = tmp_path / "out"
    out.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=out, home=tmp_path, inputs={"dataset": src})
    result = run(ctx, params or Params())
    assert sorted(result.outputs) == ["card.json", "test.jsonl", "train.jsonl", "val.jsonl"]
    kept = {s: list(read_jsonl(out / f"{s}.jsonl", Sample)) for s in SPLITS}
    return kept, json.loads((out / "card.json").read_text())


def test_spec_wiring() -> None:
    assert (SPEC.name, SPEC.fn, SPEC.params) == ("validate", run, Params)
    assert SPEC.needs == ("dataset",) and SPEC.provides == "dataset"


def test_clean_dataset_passes_through_unchanged(tmp_path: Path) -> None:
    train = [sample("q1", "a1"), sample("q2", fenced(CODE_A), "complete")]
    val = [sample("q3", "a3", "locate")]
    test = [sample("q4", "a4")]
    kept, card = run_on(tmp_path, train, val, test)
    assert kept == {"train": train, "val": val, "test": test}
    assert card["kept"] == {"train": 2, "val": 1, "test": 1}
    assert set(card["dropped"].values()) == {0}  # type: ignore[union-attr]
    assert card["question_types"] == {
        "train": {"complete": 1, "explain": 1},
        "val": {"locate": 1},
        "test": {"explain": 1},
    }


def test_empty_samples_are_dropped(tmp_path: Path) -> None:
    train = [sample("q", "   \n"), sample("  ", "answer"), sample("q", "ok"), sample("q2", "ab")]
    kept, card = run_on(tmp_path, train, params=Params(min_output_chars=2))
    assert [s.output for s in kept["train"]] == ["ok", "ab"]
    assert card["dropped"]["empty"] == 2  # type: ignore[index]


def test_too_long_samples_are_dropped(tmp_path: Path) -> None:
    params = Params(max_input_chars=20, max_output_chars=10)
    train = [
        sample("x" * 15, "ok", instruction="y" * 6),
        sample("short", "z" * 11),
        sample("short", "fine"),
    ]
    kept, card = run_on(tmp_path, train, params=params)
    assert [s.output for s in kept["train"]] == ["fine"]
    assert card["dropped"]["input_too_long"] == 1  # type: ignore[index]
    assert card["dropped"]["output_too_long"] == 1  # type: ignore[index]


def test_duplicates_ignore_whitespace_and_keep_the_evaluation_copy(tmp_path: Path) -> None:
    shared = sample("What does  `f` do?", "It adds.")
    train = [
        sample("What does `f` do?", "It  adds.\n"),
        sample("q", "a"),
        sample("q", "a"),
        sample("other", "answer"),
    ]
    kept, card = run_on(tmp_path, train, val=[shared], test=[shared.model_copy()])
    assert kept["test"] == [shared]
    assert kept["val"] == []
    assert [s.input for s in kept["train"]] == ["q", "other"]
    assert card["dropped"]["duplicate"] == 3  # type: ignore[index]
    assert card["dropped_by_split"] == {
        "test": {
            "duplicate": 0,
            "empty": 0,
            "input_too_long": 0,
            "leak": 0,
            "output_too_long": 0,
        },
        "val": {
            "duplicate": 1,
            "empty": 0,
            "input_too_long": 0,
            "leak": 0,
            "output_too_long": 0,
        },
        "train": {
            "duplicate": 2,
            "empty": 0,
            "input_too_long": 0,
            "leak": 0,
            "output_too_long": 0,
        },
    }


def test_dedupe_can_be_switched_off(tmp_path: Path) -> None:
    train = [sample("q", "a"), sample("q", "a")]
    kept, _ = run_on(tmp_path, train, params=Params(dedupe=False))
    assert len(kept["train"]) == 2


def test_instruction_is_part_of_the_duplicate_key() -> None:
    assert dedupe_key(sample("q", "a", instruction="x")) != dedupe_key(sample("q", "a"))
    assert dedupe_key(sample(" q\n", "a  b")) == dedupe_key(sample("q", "a b"))


def test_train_code_leaking_into_test_outputs_is_dropped(tmp_path: Path) -> None:
    test = [sample("Write `total`.", f"Here it is:\n{fenced(CODE_A)}\nDone.", "complete")]
    train = [
        sample("Write `total` again.", fenced(CODE_A), "complete"),
        sample("Write `first`.", fenced(CODE_B), "complete"),
        sample("Sig of total?", fenced("def total(items)"), "signature"),
    ]
    kept, card = run_on(tmp_path, train, test=test)
    assert [s.input for s in kept["train"]] == ["Write `first`.", "Sig of total?"]
    assert card["dropped"]["leak"] == 1  # type: ignore[index]
    assert kept["test"] == test


def test_leaks_only_checked_against_test_not_val(tmp_path: Path) -> None:
    val = [sample("Write it.", fenced(CODE_A), "complete")]
    train = [sample("Write `total`.", fenced(CODE_A), "complete")]
    kept, card = run_on(tmp_path, train, val=val)
    assert len(kept["train"]) == 1 and card["dropped"]["leak"] == 0  # type: ignore[index]


def test_leak_index_finds_blocks_inside_longer_code() -> None:
    bigger = (
        "class Cart:\n    def total(self):\n        return 1\n\n"
        "    def size(self):\n        x = 1\n        return x"
    )
    index = LeakIndex([fenced(bigger)])
    inner = "    def size(self):\n        x = 1\n        return x"
    assert index.leaks(fenced(inner))
    assert index.leaks(fenced("    def total(self):\n        return 1"))
    assert not index.leaks(fenced("    def size(self):\n        x = 2\n        return x"))
    assert not index.leaks(fenced("return 1"))
    assert not index.leaks("    def total(self):\n        return 1")


def test_code_blocks() -> None:
    text = "a\n```python\nx = 1\ny = 2\n```\nb\n```\nz\n```"
    assert code_blocks(text) == ["x = 1\ny = 2", "z"]
    assert code_blocks("no code") == []


def test_schema_error_names_file_line_and_field(tmp_path: Path) -> None:
    src = tmp_path / "dataset"
    write_jsonl(src / "train.jsonl", [sample("q", "a")])
    write_jsonl(src / "test.jsonl", [])
    val = src / "val.jsonl"
    val.write_text(json.dumps({"input": "q", "output": "a"}) + "\n" + json.dumps({"input": "q"}))
    ctx = StepContext(repo=tmp_path, out_dir=tmp_path, home=tmp_path, inputs={"dataset": src})
    with pytest.raises(DataError) as info:
        run(ctx, Params())
    assert str(info.value) == f"{val}:2: output: Field required"


def test_invalid_json_and_missing_split(tmp_path: Path) -> None:
    src = tmp_path / "dataset"
    write_jsonl(src / "train.jsonl", [sample("q", "a")])
    ctx = StepContext(repo=tmp_path, out_dir=tmp_path, home=tmp_path, inputs={"dataset": src})
    with pytest.raises(DataError, match=r"val\.jsonl: file not found"):
        run(ctx, Params())
    (src / "val.jsonl").write_text("")
    (src / "test.jsonl").write_text('{"input": "q", "output": "a"}\n{not json\n')
    with pytest.raises(DataError, match=r"test\.jsonl:2: invalid JSON"):
        run(ctx, Params())


def test_empty_train_after_validation_is_a_data_error(tmp_path: Path) -> None:
    test = [sample("q", "a")]
    train = [sample("q", "a"), sample("q2", " ")]
    with pytest.raises(DataError) as info:
        run_on(tmp_path, train, test=test)
    assert str(info.value) == (
        "no training samples left after validation (dropped: empty=1, duplicate=1)"
    )
    assert not (tmp_path / "out" / "train.jsonl").exists()
