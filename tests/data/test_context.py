from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from pathlib import Path

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Chunk
from guardian.data.context import ContextIndex
from guardian.data.probe import build_probe
from guardian.data.retrieval import query_terms
from guardian.steps import mine
from guardian.steps.base import StepContext

ROOT = Path(__file__).resolve().parents[2]

# (path, kind, qualname, code): `cancel` is a function and two methods; the long fillers say
# "cancel", "order" and "open_orders" so often that BM25 alone ranks them above the definitions.
UNITS = [
    ("shop/orders.py", "class", "PurchaseOrder", "class PurchaseOrder:\n    lines: list"),
    ("shop/orders.py", "method", "PurchaseOrder.cancel",
     "def cancel(self) -> None:\n    self.status = 'cancelled'"),
    ("shop/orders.py", "function", "open_orders",
     "def open_orders(orders: list) -> list:\n    return [o for o in orders if o.open]"),
    ("shop/stock.py", "class", "Reservation", "class Reservation:\n    sku: str"),
    ("shop/stock.py", "method", "Reservation.cancel",
     "def cancel(self, reason: str) -> bool:\n    return self.release(reason)"),
    ("shop/stock.py", "function", "cancel",
     "def cancel(item: str) -> None:\n    remove(item)"),
    ("shop/admin.py", "function", "cancel_every_open_order",
     "def cancel_every_open_order(orders: list) -> int:\n"
     + "    # cancel each open order, cancel its stock, cancel the purchase order\n" * 6
     + "    return len(orders)"),
    ("shop/admin.py", "function", "report_open_orders",
     "def report_open_orders(orders: list) -> str:\n"
     + "    total += len(open_orders(orders))  # the purchase order lines\n" * 6
     + "    return ''"),
    ("tests/test_orders.py", "function", "test_cancel_purchase_order",
     "def test_cancel_purchase_order() -> None:\n"
     + "    order = PurchaseOrder(); order.cancel(); assert order.cancelled  # cancel\n" * 4),
]  # fmt: skip


def chunks(units: list[tuple[str, str, str, str]] = UNITS) -> list[Chunk]:
    out: list[Chunk] = []
    repeats: Counter[str] = Counter()
    for line, (path, kind, qualname, code) in enumerate(units, start=1):
        key = f"{path}:{qualname}"
        repeats[key] += 1
        again = f"#{repeats[key]}" if repeats[key] > 1 else ""
        out.append(
            Chunk(
                id=hashlib.sha256(key.encode()).hexdigest() + again,
                repo="shop",
                commit="c0ffee",
                path=path,
                language="python",
                kind=kind,  # type: ignore[arg-type]
                name=qualname.rsplit(".", 1)[-1],
                qualname=qualname,
                signature=code.splitlines()[0].rstrip(":"),
                code=code,
                start_line=line * 10,
                end_line=line * 10 + 5,
                content_hash=hashlib.sha256(code.encode()).hexdigest(),
            )
        )
    return out


def qualnames(index: ContextIndex, question: str, k: int = 3) -> list[str]:
    """The qualnames (or `module:<path>`) of the documents a question retrieves."""
    by_id = {c.id: c.qualname for c in chunks()}
    return [by_id.get(d.id, d.id) for d in index.search(question, k)]


def bm25(index: ContextIndex, question: str, k: int = 3) -> list[str]:
    """What BM25 alone ranks first, to show each question needs the name index."""
    by_id = {c.id: c.qualname for c in chunks()}
    ranked = index.index.search(query_terms(question), k)
    return [by_id.get(index.docs[i].id, index.docs[i].id) for i in ranked]


def test_a_named_symbol_comes_first() -> None:
    index = ContextIndex(chunks())
    question = "What does `open_orders` return for purchase order lines?"
    assert bm25(index, question)[0] != "open_orders"
    assert qualnames(index, question)[0] == "open_orders"
    assert qualnames(index, "What does open_orders() return?")[0] == "open_orders"
    sample, ids = index.prompt(question, k=3)
    assert ids[0] == next(c.id for c in chunks() if c.qualname == "open_orders")
    assert "shop/orders.py" in sample.input.split("[2]")[0]


def test_a_qualified_method_name_resolves_to_that_method() -> None:
    index = ContextIndex(chunks())
    question = "Explain what `PurchaseOrder.cancel` does."
    assert bm25(index, question)[0] != "PurchaseOrder.cancel"
    got = qualnames(index, question)
    assert got[0] == "PurchaseOrder.cancel"
    assert "Reservation.cancel" not in got and "cancel" not in got
    assert qualnames(index, "What does `Reservation.cancel` take?")[0] == "Reservation.cancel"
    # module-qualified, bare, and through a receiver
    bare = "Who calls shop.orders.PurchaseOrder.cancel in the code?"
    assert qualnames(index, bare)[0] == "PurchaseOrder.cancel"
    assert qualnames(index, "What does `self.open_orders()` give?")[0] == "open_orders"


def test_an_ambiguous_name_returns_every_definition_first() -> None:
    index = ContextIndex(chunks())
    question = "What does `cancel` do?"
    defs = {"cancel", "PurchaseOrder.cancel", "Reservation.cancel"}
    assert set(bm25(index, question)) != defs
    assert set(qualnames(index, question)) == defs
    wide = qualnames(index, question, k=5)
    assert set(wide[:3]) == defs and not set(wide[3:]) & defs
    # two names of one unit bring it once
    twice = qualnames(index, "Is `cancel` the same as `PurchaseOrder.cancel`?", k=5)
    assert len(set(twice)) == 5 and set(twice[:3]) == defs
    # the unit the name spells out whole first, then the one sharing most with the question
    got = qualnames(index, "What does `cancel` do with a reservation?", k=2)
    assert got == ["cancel", "Reservation.cancel"]
    got = qualnames(index, "What does `cancel` do with a purchase order?", k=2)
    assert got == ["cancel", "PurchaseOrder.cancel"]


def test_a_unit_defined_several_times_lists_the_one_in_force_first() -> None:
    overloads = [
        ("shop/types.py", "function", "convert", "@overload\ndef convert(x: int) -> int: ..."),
        ("shop/types.py", "function", "convert", "@overload\ndef convert(x: str) -> str: ..."),
        ("shop/types.py", "function", "convert",
         "def convert(x: int | str) -> int | str:\n    return normalise(x) if x else x"),
        ("shop/money.py", "method", "Money.convert",
         "def convert(self, rate: float) -> Money:\n    return Money(self.cents * rate)"),
    ]  # fmt: skip
    cs = chunks(UNITS + overloads)
    unit = {c.id: (c.qualname, c.start_line) for c in cs}
    stubs_then_body = [unit[c.id] for c in cs if c.qualname == "convert"]
    got = [unit[d.id] for d in ContextIndex(cs).search("What does `convert` return?", 4)]
    assert got[:3] == stubs_then_body[::-1]
    assert got[3][0] == "Money.convert"


def test_a_named_file_keeps_its_outline_first() -> None:
    index = ContextIndex(chunks())
    got = qualnames(index, "What does `open_orders` in shop/orders.py return?")
    assert got[:2] == ["module:shop/orders.py", "open_orders"]
    # the named file decides which of an ambiguous name's units comes first
    got = qualnames(index, "How does `cancel` in shop/stock.py work?")
    assert got[0] == "module:shop/stock.py" and got[1] in ("cancel", "Reservation.cancel")


def test_unresolved_dotted_names_fall_back_to_their_parts() -> None:
    index = ContextIndex(chunks())
    assert qualnames(index, "What is `PurchaseOrder.missing`?", k=1) == ["PurchaseOrder"]
    got = qualnames(index, "What does `po.cancel()` do?")
    assert set(got) == {"cancel", "PurchaseOrder.cancel", "Reservation.cancel"}
    assert qualnames(index, "Outline `shop.stock`.", k=1) == ["module:shop/stock.py"]


def test_questions_without_names_rank_as_bm25_does() -> None:
    index = ContextIndex(chunks())
    for question in (
        "How are purchases handled when nothing is in stock?",
        "Which part counts the lines of purchase orders?",
        "What happens to reserved items?",
    ):
        assert qualnames(index, question, k=4) == bm25(index, question, k=4), question


def test_a_plain_word_brings_only_its_best_definition() -> None:
    index = ContextIndex(chunks())
    question = "How do I cancel a purchase order?"
    got = qualnames(index, question, k=4)
    assert got[0] == "PurchaseOrder.cancel"
    assert got[1:] == [q for q in bm25(index, question, k=5) if q != got[0]][:3]
    # a code name in the question wins over plain words
    assert qualnames(index, "Can I cancel with `open_orders`?", k=1) == ["open_orders"]


def test_the_ranking_does_not_depend_on_chunk_order() -> None:
    shuffled = chunks()
    random.Random(7).shuffle(shuffled)
    a, b = ContextIndex(chunks()), ContextIndex(shuffled)
    for question in ("What does `cancel` do?", "How do I cancel a purchase order?"):
        assert [d.id for d in a.search(question, 5)] == [d.id for d in b.search(question, 5)]


def test_probe_questions_find_their_document_on_the_demo_project(tmp_path: Path) -> None:
    out = tmp_path / "chunks"
    out.mkdir()
    demo = ROOT / "examples" / "demo-project"
    ctx = StepContext(repo=demo, out_dir=out, home=tmp_path)
    mine.run(ctx, mine.Params(allow_plain_dir=True, workers=1))
    mined = list(read_jsonl(out / "chunks.jsonl", Chunk))
    index = ContextIndex(mined)
    hits: dict[str, list[bool]] = defaultdict(list)
    for item in build_probe(mined, set(), seed=0, per_kind=0):
        ids = index.prompt(item.question, k=3)[1]
        hits[item.kind].append(bool(set(ids) & set(item.doc_ids)))
    assert set(hits) == {"file", "params", "returns", "callers", "members"}
    for kind, found in hits.items():
        assert sum(found) >= 0.95 * len(found), (kind, sum(found), len(found))
