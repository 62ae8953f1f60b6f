from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from guardian.core.jsonl import read_jsonl, write_jsonl
from guardian.core.schema import Chunk, Sample
from guardian.data.raft import ANSWER_TAG, final_answer, question_of, ungrounded_quotes
from guardian.data.split import split_files, split_of
from guardian.data.templates import Template, load_templates
from guardian.errors import ConfigError, DataError
from guardian.steps.base import StepContext
from guardian.steps.synthesize import SPEC, Params, resolve_templates_dir, run

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


def load(out: Path, closed_book: bool = False) -> dict[str, list[Sample]]:
    """The samples per split; without `closed_book`, a RAFT set's plain copies are left out."""
    return {
        s: [
            x for x in read_jsonl(out / f"{s}.jsonl", Sample)
            if closed_book or not x.metadata.get("closed_book")
        ]
        for s in SPLITS
    }  # fmt: skip


def test_spec_wiring() -> None:
    assert (SPEC.name, SPEC.fn, SPEC.params) == ("synthesize", run, Params)
    assert SPEC.needs == ("chunks",) and SPEC.provides == "dataset"


PLAIN_KEYS = {"chunk_id", "path", "commit", "qualname", "question_type", "split"}
RAFT_KEYS = PLAIN_KEYS | {"oracle_ids", "distractor_ids", "has_oracle", "oracle"}


def all_samples(out: Path, closed_book: bool = False) -> list[Sample]:
    return [x for samples in load(out, closed_book).values() for x in samples]


def test_test_split_is_by_file_val_is_untrained_wordings_of_trained_facts(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(8), Params())
    data = load(out)
    paths = {s: {x.metadata["path"] for x in data[s]} for s in SPLITS}
    assert all(paths[s] for s in SPLITS)
    assert not paths["train"] & paths["test"]
    assert paths["val"] <= paths["train"]  # no file is lost to validation
    trained = {(x.metadata["qualname"], x.metadata["question_type"]) for x in data["train"]}
    train_questions = {question_of(x.input) for x in data["train"]}
    for x in data["val"]:
        # a val sample asks a trained fact, in a wording never trained on
        assert (x.metadata["qualname"], x.metadata["question_type"]) in trained
        assert question_of(x.input) not in train_questions
    share = len(data["val"]) / (len(data["val"]) + len(data["train"]))
    assert 0.04 < share < 0.16, share  # val_fraction 0.1 of the wordings that have siblings
    for split, samples in data.items():
        for sample in samples:
            assert set(sample.metadata) == RAFT_KEYS
            assert sample.metadata["split"] == split
    card = json.loads((out / "card.json").read_text())
    assert card["samples"] == {s: len(x) for s, x in load(out, closed_book=True).items()}
    assert card["files"] == {
        "train": sorted(paths["train"]),
        "val": [],
        "test": sorted(paths["test"]),
    }
    # 24 units x (2 RAFT wordings + a closed-book copy in each of 9); 8 files x (2 + 8)
    assert sum(card["question_types"]["where"].values()) == 24 * (2 + 9)
    assert sum(card["question_types"]["module"].values()) == 8 * (2 + 8)
    no_val = load(run_step(tmp_path, make_chunks(8), Params(val_fraction=0.0), "nv"))
    assert not no_val["val"] and len(no_val["train"]) == len(data["train"]) + len(data["val"])


def test_plain_mode_has_no_context(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(4), Params(raft=False))
    samples = all_samples(out)
    assert samples and all(set(x.metadata) == PLAIN_KEYS for x in samples)
    where = [x for x in samples if x.metadata["question_type"] == "where"]
    for x in where:
        module = x.metadata["path"].removesuffix(".py").replace("/", ".")
        qualname = x.metadata["qualname"]
        assert f"`{qualname}`" in x.input or f"`{module}.{qualname}`" in x.input
        assert x.metadata["path"] in x.output
    assert all("Documents:" not in x.input and ANSWER_TAG not in x.output for x in samples)
    assert "raft" not in json.loads((out / "card.json").read_text())


def test_raft_samples_quote_their_oracle_and_carry_it_as_flagged(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(10), Params())
    samples = all_samples(out)
    assert len({x.metadata["question_type"] for x in samples}) >= 7
    for x in samples:
        meta = x.metadata
        assert x.input.startswith("Documents:\n[1] ")
        assert x.instruction == Params().instruction
        assert ungrounded_quotes(x.output, meta["oracle"]) == []
        assert final_answer(x.output)
        assert (meta["oracle"][0] in x.input) is meta["has_oracle"]
        assert meta["chunk_id"] not in meta["distractor_ids"]
        assert len(meta["distractor_ids"]) == (3 if meta["has_oracle"] else 4)
        assert x.input.count("\n[") == 4


def test_oracle_fraction_is_exact_per_split(tmp_path: Path) -> None:
    params = Params(oracle_fraction=0.7)
    out = run_step(tmp_path, make_chunks(12), params)
    for split, samples in load(out).items():
        with_oracle = sum(1 for x in samples if x.metadata["has_oracle"])
        assert abs(with_oracle - 0.7 * len(samples)) <= 1, split
    card = json.loads((out / "card.json").read_text())
    assert abs(card["raft"]["oracle_fraction"] - 0.7) < 0.01
    assert card["raft"]["target_oracle_fraction"] == 0.7


def test_distractors_never_come_from_more_held_out_splits(tmp_path: Path) -> None:
    chunks = make_chunks(12)
    out = run_step(tmp_path, chunks, Params(min_pool=1))
    data = load(out)
    test_files = {x.metadata["path"] for x in data["test"]}
    split_of = {c.id: "test" if c.path in test_files else "train" for c in chunks}
    split_of |= {f"module:{c.path}": split_of[c.id] for c in chunks}
    allowed = {"train": {"train"}, "val": {"train"}, "test": {"train", "test"}}
    seen = set()
    for split, samples in data.items():
        for x in samples:
            used = {split_of[i] for i in x.metadata["distractor_ids"]}
            assert used <= allowed[split]
            seen |= used
    assert seen == {"train", "test"} and data["val"]


def test_distractors_are_the_nearest_neighbours(tmp_path: Path) -> None:
    chunks = make_chunks(6, per_file=1)
    names = ["reserve_stock_order", "release_stock_item", "parse_money", "render_invoice",
             "reserve_stock_order_later", "format_date"]  # fmt: skip
    chunks = [
        c.model_copy(
            update={
                "name": n,
                "qualname": n,
                "id": f"id-{n}",
                "signature": f"def {n}(x)",
                "code": c.code.replace(c.name, n),
            }
        )  # fmt: skip
        for c, n in zip(chunks, names, strict=True)
    ]
    out = run_step(tmp_path, chunks, Params(test_fraction=0.0, val_fraction=0.0, distractors=1))
    later_file = next(c.path for c in chunks if c.name == "reserve_stock_order_later")
    checked = 0
    for x in all_samples(out):
        short_question = x.metadata["question_type"] in ("where", "explain", "signature", "usage")
        if x.metadata["chunk_id"] == "id-reserve_stock_order" and short_question:
            checked += 1
            ids = x.metadata["distractor_ids"]
            # the question names reserve_stock_order: the unit sharing most of its name wins,
            # then the outline of the file holding that unit; never the oracle's own outline
            assert ids[0] == "id-reserve_stock_order_later"
            assert ids[1:] in ([], [f"module:{later_file}"])
            assert len(ids) == (1 if x.metadata["has_oracle"] else 2)
            assert f"module:{x.metadata['path']}" not in ids
    assert checked >= 3


def test_max_context_chars_drops_distractors(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(4), Params(max_context_chars=200))
    for x in all_samples(out):
        meta = x.metadata
        docs = meta["oracle"][0] if meta["has_oracle"] else ""
        assert len(meta["distractor_ids"]) <= 3
        if meta["has_oracle"] and len(docs) > 200:
            assert meta["distractor_ids"] == []
        else:
            assert len(meta["distractor_ids"]) >= (0 if meta["has_oracle"] else 1)


def test_every_documented_function_gets_at_least_five_questions(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(5), Params())
    card = json.loads((out / "card.json").read_text())
    per_unit = card["questions_per_documented_unit"]
    assert per_unit["units"] == 15 and per_unit["min"] >= 5 and per_unit["at_least_5"] == 1.0
    questions = [question_of(x.input) for x in all_samples(out)]
    assert "What does `shop.mod00.func_0_0` do?" in questions
    assert "How do I call `shop.mod00.func_0_0`?" in questions


def test_small_pools_give_the_same_kind_of_dataset(tmp_path: Path) -> None:
    chunks = make_chunks(9)
    out = run_step(tmp_path, chunks, Params(min_pool=1, max_pool=3), "pooled")
    card = json.loads((out / "card.json").read_text())
    assert card["pools"] == 9
    assert abs(card["raft"]["oracle_fraction"] - 0.8) < 0.02
    path_of = {c.id: c.path for c in chunks} | {f"module:{c.path}": c.path for c in chunks}
    for x in all_samples(out):
        ids = set(x.metadata["distractor_ids"])
        assert all(path_of[i] == x.metadata["path"] for i in ids)  # one file per pool here


@pytest.mark.parametrize("raft", [True, False])
def test_output_is_byte_identical_and_independent_of_input_order(
    tmp_path: Path, raft: bool
) -> None:
    chunks = make_chunks(6)
    first = run_step(tmp_path, chunks, Params(raft=raft), "a")
    shuffled = chunks[:]
    random.Random(7).shuffle(shuffled)
    second = run_step(tmp_path, shuffled, Params(raft=raft), "b")
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "card.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    third = run_step(tmp_path, chunks, Params(raft=raft, seed=1), "c")
    assert (first / "train.jsonl").read_bytes() != (third / "train.jsonl").read_bytes()


def test_fractions_are_honoured_over_many_files() -> None:
    paths = [f"pkg/f{i}.py" for i in range(3000)]
    assignment = split_files(paths, val_fraction=0.1, test_fraction=0.2, seed=0)
    counts = {s: sum(1 for v in assignment.values() if v == s) for s in SPLITS}
    assert abs(counts["test"] - 600) < 75 and abs(counts["val"] - 300) < 55
    zero_val = split_files(paths[:50], val_fraction=0.0, test_fraction=0.5, seed=0)
    assert sorted(set(zero_val.values())) == ["test", "train"]


def test_a_files_split_never_changes_as_the_repo_grows() -> None:
    old = [f"pkg/f{i}.py" for i in range(40)]
    grown = [*old[5:], *(f"pkg/new{i}.py" for i in range(200))]  # five files gone, 200 added
    before = split_files(old, 0.1, 0.2, seed=0)
    after = split_files(grown, 0.1, 0.2, seed=0)
    assert {p: after[p] for p in old[5:]} == {p: before[p] for p in old[5:]}
    assert all(after[p] == split_of(p, 0.1, 0.2, 0) for p in grown)


def test_seed_changes_which_files_are_held_out() -> None:
    paths = [f"f{i}.py" for i in range(20)]
    a = split_files(paths, 0.1, 0.2, seed=0)
    b = split_files(paths, 0.1, 0.2, seed=1)
    assert a == split_files(list(reversed(paths)), 0.1, 0.2, seed=0)
    assert a != b


def test_a_small_repo_borrows_a_file_for_an_empty_split() -> None:
    for seed in range(20):
        assignment = split_files(["a.py", "b.py", "c.py"], 0.1, 0.2, seed=seed)
        assert sorted(assignment.values()) == ["test", "train", "val"]
    big_fractions = split_files(["a.py", "b.py", "c.py", "d.py"], 0.45, 0.45, seed=3)
    assert sorted(big_fractions.values()).count("train") >= 1
    # three files of which pure hashing puts none in test: the lowest-placed train file is lent
    paths = ["a.py", "b.py", "c.py"]
    seed = next(s for s in range(100) if "test" not in {split_of(p, 0.1, 0.2, s) for p in paths})
    lent = split_files(paths, 0.1, 0.2, seed)
    natural = {p: split_of(p, 0.1, 0.2, seed) for p in paths}
    moved = [p for p in paths if lent[p] != natural[p]]
    assert moved and sorted(lent.values()) == ["test", "train", "val"]


def test_too_few_files_all_train_with_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        out = run_step(tmp_path, make_chunks(2), Params())
    data = load(out)
    assert len(data["train"]) > 0 and data["test"] == []
    # no file is held out, yet early stopping still has untrained wordings to watch
    assert data["val"] and {x.metadata["path"] for x in data["val"]} <= {
        x.metadata["path"] for x in data["train"]
    }
    assert any(e["event"] == "synthesize.too_few_files" for e in logs)
    assert [e["log_level"] for e in logs if e["event"] == "synthesize.too_few_files"] == ["warning"]


def test_question_types_filter(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(4), Params(question_types=["where", "signature"]))
    types = {x.metadata["question_type"] for samples in load(out).values() for x in samples}
    assert types == {"where", "signature"}
    with pytest.raises(ConfigError, match=r"question_types: unknown bogus \(known: "):
        run_step(tmp_path, make_chunks(4), Params(question_types=["bogus"]), "bad")


def test_min_docstring_chars_drops_docstring_questions(tmp_path: Path) -> None:
    params = Params(min_docstring_chars=500)
    out = run_step(tmp_path, make_chunks(4), params)
    types = {x.metadata["question_type"] for samples in load(out).values() for x in samples}
    assert not types & {"explain", "complete", "locate", "document"}
    assert "where" in types


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
    first = samples[0]
    header = first.metadata["oracle"][0].splitlines()[0]
    assert first.output == (
        f"The relevant document is ##begin_quote##{header}##end_quote##.\n"
        f"<ANSWER>: {first.metadata['qualname']}"
    )
    assert resolve_templates_dir(str(tmp_path / "prompts")) == tmp_path / "prompts"
    with pytest.raises(ConfigError, match="templates_dir 'missing': not found"):
        resolve_templates_dir("missing")


def test_module_questions_never_use_their_own_outline_as_a_distractor(tmp_path: Path) -> None:
    methods_only = [
        c.model_copy(update={"kind": "method", "qualname": f"Box.{c.name}", "path": "shop/a.py"})
        for c in make_chunks(1)
    ]
    chunks = methods_only + [c for c in make_chunks(5) if c.path != "shop/mod00.py"]
    out = run_step(tmp_path, chunks, Params(test_fraction=0.0, val_fraction=0.0))
    modules = [x for x in all_samples(out) if x.metadata["question_type"] == "module"]
    # module has repeat 2: two wordings of each file's outline question
    paths = sorted(x.metadata["path"] for x in modules)
    assert paths == sorted([f"shop/mod0{i}.py" for i in range(1, 5)] * 2)
    for x in modules:
        ids = x.metadata["distractor_ids"]
        assert x.metadata["oracle_ids"] == [f"module:{x.metadata['path']}"]
        assert ids and x.metadata["oracle_ids"][0] not in ids
        own_units = {c.id for c in chunks if c.path == x.metadata["path"]}
        assert not own_units & set(ids)


def shipped_templates() -> list[Template]:
    """The templates the package ships in prompts/."""
    return load_templates(resolve_templates_dir("prompts"))


def test_each_fact_in_several_wordings_with_closed_book_copies(tmp_path: Path) -> None:
    out = run_step(tmp_path, make_chunks(5), Params())
    card = json.loads((out / "card.json").read_text())
    assert card["public_units"]["units"] == 15 == card["public_units"]["with_samples"]
    where = [
        x for x in all_samples(out, closed_book=True)
        if x.metadata["question_type"] == "where" and x.metadata["qualname"] == "func_1_1"
    ]  # fmt: skip
    raft = [x for x in where if x.input.startswith("Documents:")]
    plain = [x for x in where if not x.input.startswith("Documents:")]
    # `where` has repeat 2 and closed_book: two wordings with context, and a plain copy in
    # every wording (9), the two drawn for RAFT among them
    wordings = len(next(t for t in shipped_templates() if t.question_type == "where").phrasings())
    assert len(raft) == 2 and len(plain) == wordings == 9
    assert len({x.input for x in plain}) == 9 and len({x.output for x in plain}) >= 8
    assert all("shop/mod01.py" in x.output for x in where)
    assert {question_of(x.input) for x in raft} < {x.input for x in plain}
    capped = run_step(tmp_path, make_chunks(5), Params(closed_book_wordings=4), "capped")
    plain_capped = [
        x for x in all_samples(capped, closed_book=True)
        if x.metadata["question_type"] == "where" and x.metadata["qualname"] == "func_1_1"
        and x.metadata.get("closed_book")
    ]  # fmt: skip
    assert len(plain_capped) == 4
    assert all("<ANSWER>:" in x.output for x in raft)
    assert not any("<ANSWER>:" in x.output for x in plain)
    assert all(x.metadata["closed_book"] is True for x in plain)
    # the wordings are drawn with the seed
    again = run_step(tmp_path, make_chunks(5), Params(seed=5), "seed5")
    other = {x.input for x in all_samples(again) if x.metadata["question_type"] == "where"}
    assert other != {x.input for x in all_samples(out) if x.metadata["question_type"] == "where"}
