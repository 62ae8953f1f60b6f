from __future__ import annotations

import hashlib

from guardian.core.schema import Chunk
from guardian.data.context import ContextIndex
from guardian.data.facts import callers_of, is_public, is_test_path
from guardian.data.probe import PHRASINGS, build_probe
from guardian.data.raft import final_answer
from guardian.data.templates import load_templates
from guardian.evaluation.probe import score_answer
from guardian.steps.synthesize import resolve_templates_dir

SOURCES = {
    "shop/money.py": [
        ("function", "percent_of", "def percent_of(cents: int, percent: float) -> int",
         "Percent of an amount in cents.", "    return round(cents * percent / 100)"),
        ("function", "to_cents", "def to_cents(text: str) -> int",
         "Parse a price such as 12.50 into cents.", "    return int(float(text) * 100)"),
    ],
    "shop/pricing.py": [
        ("function", "with_tax", "def with_tax(cents: int, rate: float) -> int",
         "Add tax to a price.", "    return cents + percent_of(cents, rate)"),
        ("class", "PriceList", "class PriceList", "Prices by SKU.", "    pass"),
        ("method", "PriceList.total", "def total(self, skus: list[str]) -> int",
         "Sum of the prices of the given SKUs.",
         "        return sum(with_tax(self.price(s), 8.0) for s in skus)"),
        ("function", "_helper", "def _helper() -> None", "Private.", "    pass"),
    ],
    "tests/test_money.py": [
        ("function", "test_percent", "def test_percent() -> None", "", "    percent_of(1, 2)"),
    ],
}  # fmt: skip


def chunks() -> list[Chunk]:
    out: list[Chunk] = []
    for path, units in SOURCES.items():
        for line, (kind, qualname, signature, doc, body) in enumerate(units, start=1):
            head = f"{signature}:" if kind != "class" else f"{signature}:"
            docline = f'    """{doc}"""\n' if doc else ""
            code = f"{head}\n{docline}{body}"
            out.append(
                Chunk(
                    id=hashlib.sha256(f"{path}:{qualname}".encode()).hexdigest(),
                    repo="shop",
                    commit="c0ffee",
                    path=path,
                    language="python",
                    kind=kind,  # type: ignore[arg-type]
                    name=qualname.rsplit(".", 1)[-1],
                    qualname=qualname,
                    signature=signature,
                    docstring=doc or None,
                    code=code,
                    start_line=line * 10,
                    end_line=line * 10 + 2,
                    content_hash=hashlib.sha256(code.encode()).hexdigest(),
                )
            )
    return out


def test_public_and_test_paths() -> None:
    by_name = {c.qualname: c for c in chunks()}
    assert is_public(by_name["PriceList.total"]) and not is_public(by_name["_helper"])
    assert is_test_path("tests/test_money.py") and is_test_path("pkg/thing_test.go")
    assert not is_test_path("shop/testing_tools.py")


def test_callers_are_the_units_that_call_a_name() -> None:
    cs = chunks()
    by_id = {c.id: c.qualname for c in cs}
    found = {by_id[k]: v for k, v in callers_of(cs).items()}
    assert found["percent_of"] == ["test_percent", "with_tax"]
    assert found["with_tax"] == ["PriceList.total"]
    assert "to_cents" not in found  # never called


def test_probe_items_state_the_mined_facts() -> None:
    items = build_probe(chunks(), {"shop/money.py"}, per_kind=50)
    by_id = {i.id: i for i in items}
    where = by_id["file:shop/money.py:percent_of"]
    assert where.expected == ["shop/money.py"] and where.seen
    assert set(where.rivals) == {"shop/pricing.py", "tests/test_money.py"}
    assert "`percent_of`" in where.question
    params = by_id["params:shop/pricing.py:PriceList.total"]
    assert params.expected == ["skus"] and not params.seen  # self dropped, file not trained on
    returns = by_id["returns:shop/money.py:to_cents"]
    assert returns.expected == ["int"]
    callers = by_id["callers:shop/money.py:percent_of"]
    assert callers.expected == ["test_percent", "with_tax"] and callers.need == 1
    members = by_id["members:shop/pricing.py:shop/pricing.py"]
    assert members.expected == ["with_tax", "PriceList", "_helper"] and members.need == 3
    # no question about private units or test files
    assert not any(i.symbol in ("_helper", "test_percent") for i in items)
    assert {i.kind for i in items} == {"file", "params", "returns", "callers", "members"}
    assert build_probe(chunks(), {"shop/money.py"}, per_kind=50) == items


def test_probe_phrasings_are_not_training_phrasings() -> None:
    templates = load_templates(resolve_templates_dir("prompts"))
    training = [ph.input for t in templates for ph in t.phrasings()]
    for kind, phrasings in PHRASINGS.items():
        for text in phrasings:
            words = text.split("`")[0].strip() or text.split("`")[2].strip()
            assert not any(words and words in t for t in training), (kind, text)


def test_open_book_prompt_retrieves_the_document_that_answers() -> None:
    cs = chunks()
    index = ContextIndex(cs, max_summary_chars=100)
    items = build_probe(cs, set(), per_kind=50)
    hits = 0
    for item in items:
        sample, ids = index.prompt(item.question, k=3, max_chars=2000)
        assert sample.input.startswith("Documents:\n[1] ")
        assert sample.input.endswith(f"Question: {item.question}")
        hits += bool(set(ids) & set(item.doc_ids))
    assert hits >= 0.8 * len(items)
    sample, ids = index.prompt("Who invokes `with_tax` in this codebase?", k=1, max_chars=2000)
    assert "Called by: PriceList.total" in sample.input
    # a model that copies the fact out of the context scores on the probe
    callers = next(i for i in items if i.id == "callers:shop/pricing.py:with_tax")
    answer = final_answer("##begin_quote##Called by: PriceList.total##end_quote##\n"
                          "<ANSWER>: `PriceList.total`")  # fmt: skip
    assert answer is not None and score_answer(callers, answer)


def test_open_book_context_fits_its_budget() -> None:
    index = ContextIndex(chunks(), max_summary_chars=100)
    sample, ids = index.prompt("percent_of to_cents with_tax", k=3, max_chars=150)
    assert len(ids) >= 1
    big, all_ids = index.prompt("percent_of to_cents with_tax", k=3, max_chars=10_000)
    assert len(all_ids) == 3 and len(ids) < 3 and len(sample.input) < len(big.input)
