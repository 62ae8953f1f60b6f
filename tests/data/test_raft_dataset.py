"""The issue's done criteria on a real third-party package: structlog, as installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Sample
from guardian.data.raft import ungrounded_quotes
from guardian.steps import mine, synthesize, validate
from guardian.steps.base import StepContext
from tests.helpers_git import make_git_repo

SPLITS = ("train", "val", "test")


def step(tmp_path: Path, name: str, module: Any, params: Any, **inputs: Path) -> Path:
    out = tmp_path / name
    out.mkdir()
    ctx = StepContext(repo=tmp_path / "repo", out_dir=out, home=tmp_path, inputs=inputs)
    module.run(ctx, params)
    return out


@pytest.fixture(scope="module")
def structlog_chunks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("structlog")
    package = Path(structlog.__file__).parent
    files = {
        f"structlog/{p.relative_to(package).as_posix()}": p.read_text(encoding="utf-8")
        for p in sorted(package.rglob("*.py"))
    }
    make_git_repo(root / "repo", files)
    return step(root, "chunks", mine, mine.Params())


def test_structlog_dataset_card_meets_the_done_criteria(
    tmp_path: Path, structlog_chunks: Path
) -> None:
    dataset = step(tmp_path, "dataset", synthesize, synthesize.Params(), chunks=structlog_chunks)
    clean = step(tmp_path, "clean", validate, validate.Params(), dataset=dataset)
    card = json.loads((clean / "card.json").read_text())

    assert len([t for t, n in card["question_type_totals"].items() if n]) >= 5
    assert abs(card["oracle"]["all"]["fraction"] - 0.8) <= 0.02
    for split in SPLITS:
        assert abs(card["oracle"][split]["fraction"] - 0.8) <= 0.02, split
    assert card["quotes"]["checked"] > 1000 and card["quotes"]["ungrounded"] == 0
    assert card["dropped"]["ungrounded"] == 0 and card["dropped"]["format"] == 0
    assert card["synthesis"]["raft"] is True and len(card["examples"]) == 5

    every = {s: list(read_jsonl(clean / f"{s}.jsonl", Sample)) for s in SPLITS}
    paths = {s: {x.metadata["path"] for x in every[s]} for s in SPLITS}
    # closed-book copies carry no context; every other sample is RAFT
    kept = {s: [x for x in every[s] if not x.metadata.get("closed_book")] for s in SPLITS}
    assert all(len(kept[s]) < len(every[s]) for s in SPLITS)
    assert not (paths["train"] & paths["test"]) and paths["val"] <= paths["train"]
    test_ids = {
        i for x in kept["test"] for i in [x.metadata["chunk_id"], *x.metadata["oracle_ids"]]
    }
    for x in kept["train"]:
        assert not test_ids & {*x.metadata["oracle_ids"], *x.metadata["distractor_ids"]}
        assert ungrounded_quotes(x.output, x.metadata["oracle"]) == []

    again = step(tmp_path, "again", validate, validate.Params(), dataset=clean)
    recheck = json.loads((again / "card.json").read_text())
    assert recheck["dropped"]["leak"] == 0 and recheck["quotes"]["ungrounded"] == 0


def test_structlog_synthesis_is_byte_identical(tmp_path: Path, structlog_chunks: Path) -> None:
    a = step(tmp_path, "a", synthesize, synthesize.Params(), chunks=structlog_chunks)
    b = step(tmp_path, "b", synthesize, synthesize.Params(), chunks=structlog_chunks)
    for name in ("train.jsonl", "val.jsonl", "test.jsonl", "card.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
