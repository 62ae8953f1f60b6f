from __future__ import annotations

import numpy as np
import pytest

from guardian.data.retrieval import (
    BM25,
    Mention,
    NameIndex,
    NearDupIndex,
    Neighbours,
    mentions,
    shingles,
    terms,
)

DOCS = [
    "def reserve_stock(order, qty): reserve stock for an order",
    "def release_stock(order): release reserved stock of an order",
    "def render_invoice(order): render an invoice as html",
    "def parse_money(text): parse a money amount",
    "def reserve_table(guest): reserve a restaurant table",
]


def test_terms_split_snake_and_camel_case_and_drop_stopwords() -> None:
    assert terms("def reserveStock(self, order_id): return None") == [
        "reservestock",
        "reserve",
        "stock",
        "order_id",
        "order",
        "id",
    ]
    assert terms("a b to of") == []


def test_bm25_ranks_shared_rare_terms_first() -> None:
    index = BM25([terms(d) for d in DOCS])
    assert index.nearest(0, 2) == [1, 4]
    assert 0 not in index.nearest(0, 4)
    assert index.nearest(0, 0) == []
    scores = index.scores(0)
    assert scores[1] > scores[2] and scores[3] == 0.0


def test_bm25_respects_allowed_and_exclude() -> None:
    index = BM25([terms(d) for d in DOCS])
    allowed = np.array([True, False, True, True, True])
    assert 1 not in index.nearest(0, 4, allowed)
    assert index.nearest(0, 4, allowed, exclude=[4]) == [2, 3]
    assert index.nearest(0, 10, np.zeros(5, dtype=bool)) == []


def test_bm25_ties_break_by_distance_then_index() -> None:
    index = BM25([["x"], ["y"], ["y"], ["z"], ["y"], ["w"]])
    assert index.nearest(2, 5) == [1, 4, 3, 0, 5]
    assert index.nearest(3, 3) == [2, 4, 1]


def test_neighbours_hide_more_held_out_items_and_group_mates() -> None:
    texts = ["reserve stock order"] * 2 + ["reserve stock order cancel"] * 2 + ["parse money"]
    ranks = [0, 2, 0, 1, 0]
    groups = [("a",), ("b",), ("a", "h"), ("c",), ("d",)]
    near = Neighbours(texts, ranks, groups)
    assert near.of(0, 4) == [4]
    assert near.of(3, 4) == [2, 0, 4]
    assert set(near.of(1, 4)) == {0, 2, 3, 4}


def test_shingles() -> None:
    assert shingles("A b, c d!") == {"a b c", "b c d"}
    assert shingles("Two words") == {"two words"}
    assert shingles("...") == set()


def test_near_duplicates_are_caught_and_distinct_texts_kept() -> None:
    base = (
        "What does inventory pricing apply discount do? It applies a percentage discount to "
        "a price and rounds the result to whole cents before returning the new money value."
    )
    index = NearDupIndex(threshold=0.8)
    assert index.add_if_new(base)
    assert not index.add_if_new(base)
    assert not index.add_if_new(base.upper().replace(".", " !"))
    assert not index.add_if_new(base.replace("whole cents", "whole  cents"))
    assert index.add_if_new("Where is the stock reservation code? In shop/stock.py, lines 4-9.")
    assert index.add_if_new(base.replace("percentage discount", "fixed surcharge").replace(
        "rounds the result to whole cents", "never rounds"))  # fmt: skip


def test_near_dup_signatures_do_not_depend_on_the_instance() -> None:
    a, b = NearDupIndex(), NearDupIndex()
    text = "the same text in two indexes"
    assert np.array_equal(a.signature(text), b.signature(text))
    assert a.signature(text).shape == (32,)
    with pytest.raises(ValueError, match="multiple of bands"):
        NearDupIndex(num_perm=30, bands=4)


def test_near_dup_index_grows_past_its_initial_capacity() -> None:
    index = NearDupIndex()
    kept = sum(
        index.add_if_new(f"unique sample number {i} about item {i * 7}") for i in range(1500)
    )
    assert kept == 1500


def test_mentions_find_code_names_in_backticks_and_bare() -> None:
    got = mentions("Does `PurchaseOrder.cancel()` call self.release or order_total(x)?")
    assert got == [
        Mention("PurchaseOrder.cancel", True),
        Mention("release", True),
        Mention("order_total", True),
    ]
    assert mentions("How do I cancel an order?") == [
        Mention("cancel", False),
        Mention("order", False),
    ]
    # a word written as code once is code everywhere; question words are never names
    assert mentions("cancel or `cancel`? what function") == [Mention("cancel", True)]


def test_mentions_skip_plain_words_opening_a_sentence() -> None:
    assert mentions("List the fields of `Order`.") == [
        Mention("fields", False),
        Mention("Order", True),
    ]
    assert mentions("Which is it? Product. Catalog.cancel, or PluginManager") == [
        Mention("Catalog.cancel", True),
        Mention("PluginManager", True),
    ]
    assert mentions("Where is the List class?") == [Mention("List", True)]
    assert mentions("cancel() does what?") == [Mention("cancel", True)]


def test_mentions_leave_paths_and_file_names_to_the_path_rule() -> None:
    assert mentions("What is in `inventory/pricing.py` and setup.py?") == []
    assert mentions("see pkg/mod.py") == [Mention("see", False)]
    assert mentions("`with_tax(net, rate=0.2)`") == [Mention("with_tax", True)]


def test_name_index_finds_every_dot_suffix_of_a_full_name() -> None:
    index = NameIndex([("pkg.orders.Order.cancel", 0), ("pkg.stock.cancel", 1), ("pkg.orders", 2)])
    assert index.lookup("cancel") == [0, 1]
    assert index.lookup("Order.cancel") == [0]
    assert index.lookup("orders.Order.cancel") == index.lookup("pkg.orders.Order.cancel") == [0]
    assert index.lookup("orders") == [2]
    assert index.lookup("Order.cancel.x") == [] and index.lookup("rder.cancel") == []
