"""Answer-quality items built from the shipped demo project, mined by the real miner."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import AskItem, Chunk
from guardian.data.asks import (
    KINDS,
    PHRASINGS,
    build_asks,
    content_words,
)
from guardian.data.asks import tests_exercising as exercising  # not a test: keep pytest off it
from guardian.data.facts import callers_of
from guardian.data.probe import PHRASINGS as PROBE_PHRASINGS
from guardian.data.tasks import task_of
from guardian.data.templates import load_templates
from guardian.steps.base import StepContext
from guardian.steps.mine import Params, run
from guardian.steps.synthesize import resolve_templates_dir

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo-project"
SEEN = {"inventory/stock.py", "inventory/suppliers.py"}


@cache
def demo_chunks() -> tuple[Chunk, ...]:
    """The demo project's chunks as the mine step writes them (mined once per session)."""
    scratch = Path(tempfile.mkdtemp(prefix="demo-chunks."))
    try:
        ctx = StepContext(repo=DEMO, out_dir=scratch / "out", home=scratch / "home")
        run(ctx, Params(allow_plain_dir=True, workers=1))
        return tuple(read_jsonl(scratch / "out" / "chunks.jsonl", Chunk))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@cache
def demo_items(per_kind: int = 200, seed: int = 0) -> tuple[AskItem, ...]:
    return tuple(build_asks(demo_chunks(), SEEN, seed=seed, per_kind=per_kind))


def item(kind: str, qualname: str) -> AskItem:
    return next(i for i in demo_items() if i.kind == kind and i.qualname == qualname)


def test_every_kind_is_asked_about_public_symbols_spread_over_files() -> None:
    items = build_asks(demo_chunks(), SEEN, seed=0, per_kind=6)
    counts = Counter(i.kind for i in items)
    assert counts == dict.fromkeys(KINDS, 6)
    for kind in KINDS:
        assert len({i.path for i in items if i.kind == kind}) >= 4, kind
    assert len({i.id for i in items}) == len(items)
    assert not any(i.path.startswith("tests/") for i in items)
    assert not any(part.startswith("_") for i in items for part in i.qualname.split("."))
    assert all((i.path in SEEN) is i.seen for i in items)
    # a symbol with a docstring comes first for explain, howto and where
    assert all(i.summary for i in items if i.kind in ("explain", "howto", "where"))


def test_items_are_deterministic_for_a_seed_and_move_with_it() -> None:
    first = build_asks(demo_chunks(), SEEN, seed=3, per_kind=5)
    assert build_asks(list(reversed(demo_chunks())), SEEN, seed=3, per_kind=5) == first
    other = build_asks(demo_chunks(), SEEN, seed=4, per_kind=5)
    assert [i.id for i in other] != [i.id for i in first]


def _names_it(question: str, it: AskItem) -> bool:
    compound = "_" in it.name or re.search(r"[a-z][A-Z]", it.name)
    return (
        it.qualname in question
        or f"`{it.name}`" in question
        or bool(compound and re.search(rf"\b{re.escape(it.name)}\b", question))
    )


def test_howto_asks_for_a_task_in_words_never_the_name() -> None:
    howtos = [i for i in demo_items() if i.kind == "howto"]
    assert len(howtos) >= 30
    assert not any(_names_it(i.question, i) for i in howtos)
    receive = item("howto", "StockLedger.receive")
    assert "book goods received from a supplier into a location" in receive.question
    assert item("howto", "needs_reorder").question.count("check whether stock on hand") == 1


def test_items_carry_what_scores_them() -> None:
    cs = {c.qualname: c for c in demo_chunks()}
    callers = callers_of(demo_chunks())
    for it in demo_items():
        assert cs[it.qualname].id in it.doc_ids, it.id
        assert it.callers == callers.get(cs[it.qualname].id, []), it.id
        chunk = cs[it.qualname]
        assert (it.start_line, it.end_line) == (chunk.start_line, chunk.end_line)
    where = item("where", "round_to_pack")
    assert where.doc_ids == [cs["round_to_pack"].id, "module:inventory/reorder.py"]
    receive = item("usage", "StockLedger.receive")
    assert receive.params == ["sku", "location", "quantity", "day", "ref"]
    assert receive.call == "stock_ledger.receive(sku, location, quantity, day)"
    assert item("explain", "PurchaseOrder.cancel").content == ["cancel", "order", "received"]
    on_hand = item("explain", "StockLedger.on_hand")
    assert on_hand.content[:3] == ["units", "product", "hand"] and "location" in on_hand.content
    assert "adjust" in on_hand.content and not any(w.startswith("test") for w in on_hand.content)


def test_code_items_carry_their_real_code_and_the_tests_that_call_them() -> None:
    cs = {c.qualname: c for c in demo_chunks()}
    codes = {i.qualname: i for i in demo_items() if i.kind == "code"}
    assert all(i.language == "python" and i.reference == cs[q].code for q, i in codes.items())
    assert codes["StockLedger.adjust"].tests == ["tests/test_stock.py"]
    assert codes["economic_order_quantity"].tests == ["tests/test_reorder_and_csv.py"]
    assert codes["percent_of"].tests == []  # only called through other functions
    assert not any(i.reference for i in demo_items() if i.kind != "code")
    # a small set prefers the symbols the repo's tests exercise
    few = [i for i in build_asks(demo_chunks(), SEEN, seed=0, per_kind=8) if i.kind == "code"]
    assert all(i.tests for i in few)


def test_tests_exercising_finds_direct_calls_from_test_files() -> None:
    found = exercising(demo_chunks())
    assert found["StockLedger.ship"] == ["tests/test_stock.py"]
    assert found["StockLedger"] == ["tests/test_stock.py"]
    assert found["products_from_text"] == ["tests/test_reorder_and_csv.py"]
    assert "safety_stock" not in found and "StockLedger.history" not in found
    assert not any(q.startswith("test_") for q in found)


@pytest.mark.parametrize(
    ("summary", "task", "verb"),
    [
        ("Cancels the order and releases stock.", "cancel the order and release stock", True),
        ("Book goods received from a supplier.", "book goods received from a supplier", True),
        ("Return the product with this SKU.", "get the product with this SKU", True),
        ("Return True if `sku` is canonical.", "check whether `sku` is canonical", True),
        ("True when stock has fallen; else not.", "check whether stock has fallen", True),
        ("How many units to order now: enough.", "work out how many units to order now", True),
        ("Applies the discount to a line.", "apply the discount to a line", True),
        ("Units of a product on hand.", "get the units of a product on hand", False),
        ("All movements of one product.", "get all movements of one product", False),
        ("Format cents, e.g. 1250 -> 12.50.", "format cents", True),
        ("One line per module, as `path:line: what`.", "get one line per module", False),
        ("Render a span (start: end) of text.", "render a span", True),
        ("", "", False),
    ],
)
def test_summaries_become_tasks(summary: str, task: str, verb: bool) -> None:
    assert task_of(summary) == (task, verb)


def test_content_words_skip_stopwords_and_short_words() -> None:
    words = content_words("Return the `sku` of an item, without normalising it.", ["sku"], ["a.b"])
    assert words == ["item", "normalising"]
    assert len(content_words(" ".join(f"word{i}x" for i in range(30)), [], [])) == 10


def _normal(text: str) -> str:
    text = re.sub(r"`[^`]*\{[^`]*\}[^`]*`", "X", text)
    return " ".join(re.sub(r"\{[^}]*\}", "X", text).lower().split())


def _shingles(text: str, n: int = 4) -> set[str]:
    """Every run of n words of a wording's literal text (placeholders and code break runs)."""
    out: set[str] = set()
    for literal in re.split(r"`[^`]*`|\{[^}]*\}", text):
        words = re.findall(r"[a-z']+", literal.lower())
        out |= {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    return out


def test_wordings_are_no_training_or_probe_phrasing() -> None:
    prompts = resolve_templates_dir("prompts")
    templates = load_templates(prompts)
    texts = [ph.input for t in templates for ph in t.phrasings()]
    texts += [t.instruction for t in templates if t.instruction]
    texts += [w for ws in PROBE_PHRASINGS.values() for w in ws]
    texts += [p.read_text(encoding="utf-8") for p in Path(prompts).glob("*.yaml")]
    assert len(texts) > 40
    training = [_normal(t) for t in texts]
    used = set().union(*(_shingles(t) for t in texts))
    for kind, wordings in PHRASINGS.items():
        for wording in wordings:
            normal = _normal(wording)
            assert not any(normal in t or t in normal for t in training), (kind, wording)
            assert not _shingles(wording) & used, (kind, wording, _shingles(wording) & used)
    # the rendered questions differ from every rendered training question too
    questions = {_normal(re.sub(r"`[^`]+`", "`{x}`", i.question)) for i in demo_items()}
    assert not questions & set(training)
