from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from guardian.errors import ConfigError, DataError
from guardian.records import Chunk, Sample, read_jsonl, write_jsonl
from guardian.steps.base import StepContext
from guardian.steps.synthesize import SPEC, Params, resolve_templates_dir, run, split_files

SPLITS = ("train", "val", "test")


def make_chunks(n_files: int, per_file: int = 3) -> list[Chunk]:
    chunks: list[Chunk] = []
    for f in range(n_files):
        path = f"shop/mod{f:02d}.py"
        for i in range(per_file):
            name = f"func_{f}_{i}"
            doc = f"Compute the value number {i} for module {f}.\n\nArgs:\n    x: Input."
            code = (
                f"def {name}(x: int) -> int:\n"
                f'    """Compute the value number {i} for module {f}.\n\n'
                f'    Args:\n        x: Input.\n    """\n'
                f"    return x + {f * 100 + i}"
            )
            chunks.append(
                Chunk(
                    id=f"{f}-{i}",
                    repo="shop",
                    commit="c0ffee",
                    path=path,
                    language="python",
                    kind="function",
                    name=name,
                    qualname=name,
                    signature=f"def {name}(x: int) -> int",
                    docstring=doc,
                    code=code,
                    start_line=1 + 10 * i,
                    end_line=7 + 10 * i,
                    content_hash=f"h{f}{i}",
                )
            )
    return chunks


def run_step(tmp_path: Path, chunks: list[Chunk], params: Params, name: str = "out") -> Path:
    src = tmp_path / f"{name}-chunks"
    write_jsonl(src / "chunks.jsonl", chunks)
    out = tmp_path / name
    out.mkdir()
    ctx = StepContext(repo=tmp_path, out_dir=out, home=tmp_path, inputs={"chunks": src})
    result = run(ctx, params)
    assert sorted(result.outputs) == ["card.json", "test.jsonl", "train.jsonl", "val.jsonl"]
    return out


def load(out: Path) -> dict[str, list[Sample]]:
    return {s: list(read_jsonl(out / f"{s}.jsonl", Sample)) for s in SPLITS}


def test_spec_wiring() -> None:
    assert (SPEC.name, SPEC.fn, SPEC.params) == ("synthesize", run, Params)
    assert SPEC.needs == ("chunks",) and SPEC.provides == "dataset"


def test_split_is_by_file_and_metadata_is_complete(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(8), Params())
    data = load(out)
    paths = {s: {x.metadata["path"] for x in data[s]} for s in SPLITS}
    assert all(paths[s] for s in SPLITS)
    assert not paths["train"] & paths["val"]
    assert not paths["train"] & paths["test"]
    assert not paths["val"] & paths["test"]
    for split, samples in data.items():
        for sample in samples:
            assert set(sample.metadata) == {
                "chunk_id",
                "path",
                "commit",
                "qualname",
                "question_type",
                "split",
            }
            assert sample.metadata["split"] == split
    card = json.loads((out / "card.json").read_text())
    assert card["samples"] == {s: len(data[s]) for s in SPLITS}
    assert card["files"] == {s: sorted(paths[s]) for s in SPLITS}
    assert sum(card["question_types"]["locate"].values()) == 8 * 3


def test_output_is_byte_identical_and_independent_of_input_order(tmp_path: Path) -> None:
    chunks = make_chunks(6)
    first = run_step(tmp_path, chunks, Params(), "a")
    shuffled = chunks[:]
    random.Random(7).shuffle(shuffled)
    second = run_step(tmp_path, shuffled, Params(), "b")
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "card.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_fractions_are_honoured_by_file_count() -> None:
    paths = [f"f{i}.py" for i in range(20)]
    assignment = split_files(paths, val_fraction=0.1, test_fraction=0.2, seed=0)
    counts = {s: sum(1 for v in assignment.values() if v == s) for s in SPLITS}
    assert counts == {"train": 14, "val": 2, "test": 4}
    zero_val = split_files(paths, val_fraction=0.0, test_fraction=0.5, seed=0)
    assert sorted(set(zero_val.values())) == ["test", "train"]


def test_seed_changes_which_files_are_held_out() -> None:
    paths = [f"f{i}.py" for i in range(20)]
    a = split_files(paths, 0.1, 0.2, seed=0)
    b = split_files(paths, 0.1, 0.2, seed=1)
    assert a == split_files(list(reversed(paths)), 0.1, 0.2, seed=0)
    assert a != b


def test_three_files_give_each_nonzero_split_one_file() -> None:
    assignment = split_files(["a.py", "b.py", "c.py"], 0.1, 0.2, seed=0)
    assert sorted(assignment.values()) == ["test", "train", "val"]
    big_fractions = split_files(["a.py", "b.py", "c.py", "d.py"], 0.45, 0.45, seed=3)
    assert sorted(big_fractions.values()).count("train") == 1


def test_too_few_files_all_train_with_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        out = run_step(tmp_path, make_chunks(2), Params())
    data = load(out)
    assert len(data["train"]) > 0 and data["val"] == [] and data["test"] == []
    assert any(e["event"] == "synthesize.too_few_files" for e in logs)
    assert [e["log_level"] for e in logs if e["event"] == "synthesize.too_few_files"] == ["warning"]


def test_question_types_filter(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(4), Params(question_types=["locate", "signature"]))
    types = {x.metadata["question_type"] for samples in load(out).values() for x in samples}
    assert types == {"locate", "signature"}
    with pytest.raises(ConfigError, match=r"question_types: unknown bogus \(known: "):
        run_step(tmp_path, make_chunks(4), Params(question_types=["bogus"]), "bad")


def test_min_docstring_chars_drops_docstring_questions(tmp_path: Path) -> None:
    params = Params(min_docstring_chars=500)
    out = run_step(tmp_path, make_chunks(4), params)
    types = {x.metadata["question_type"] for samples in load(out).values() for x in samples}
    assert "explain" not in types and "complete" not in types
    assert "locate" in types


def test_empty_chunks_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"chunks\.jsonl: no chunks to synthesize from"):
        run_step(tmp_path, [], Params())


def test_no_renderable_samples_is_a_data_error(tmp_path: Path) -> None:
    classes = [c.model_copy(update={"kind": "class"}) for c in make_chunks(3)]
    with pytest.raises(DataError, match=r"no samples rendered from 9 chunks"):
        run_step(tmp_path, classes, Params(question_types=["signature"]))


def test_params_validation() -> None:
    with pytest.raises(ValidationError, match="val_fraction \\+ test_fraction must be below 1"):
        Params(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValidationError):
        Params(test_fraction=0.95)
    with pytest.raises(ValidationError):
        Params(templates="prompts")  # type: ignore[call-arg]


def test_templates_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    packaged = resolve_templates_dir("prompts")
    assert packaged.is_absolute() and (packaged / "locate.yaml").is_file()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "only.yaml").write_text(
        "question_type: only\ninput: 'Name of `{qualname}`?'\noutput: '{name}'\n"
    )
    assert resolve_templates_dir("prompts") == Path("prompts")
    out = run_step(tmp_path, make_chunks(3), Params())
    samples = [x for split in load(out).values() for x in split]
    assert {x.metadata["question_type"] for x in samples} == {"only"}
    assert resolve_templates_dir(str(tmp_path / "prompts")) == tmp_path / "prompts"
    with pytest.raises(ConfigError, match="templates_dir 'missing': not found"):
        resolve_templates_dir("missing")
