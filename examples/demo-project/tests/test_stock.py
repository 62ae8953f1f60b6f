from __future__ import annotations

from datetime import date

import pytest

from inventory import InsufficientStockError, StockLedger

DAY = date(2024, 3, 1)


def test_receive_ship_and_transfer_keep_totals() -> None:
    ledger = StockLedger()
    ledger.receive("ABC-0001", "A-01-1", 10, DAY)
    ledger.ship("ABC-0001", "A-01-1", 3, DAY)
    ledger.transfer("ABC-0001", "A-01-1", "B-02-1", 4, DAY)
    assert ledger.on_hand("ABC-0001", "A-01-1") == 3
    assert ledger.on_hand("ABC-0001", "B-02-1") == 4
    assert ledger.on_hand("ABC-0001") == 7
    assert ledger.locations_of("ABC-0001") == ["A-01-1", "B-02-1"]


def test_ship_more_than_on_hand_fails() -> None:
    ledger = StockLedger()
    ledger.receive("ABC-0001", "A-01-1", 2, DAY)
    with pytest.raises(InsufficientStockError, match="only 2 on hand"):
        ledger.ship("ABC-0001", "A-01-1", 5, DAY)


def test_adjust_books_the_difference() -> None:
    ledger = StockLedger()
    ledger.receive("ABC-0001", "A-01-1", 10, DAY)
    movement = ledger.adjust("ABC-0001", "A-01-1", 7, DAY)
    assert movement is not None and movement.quantity == -3
    assert ledger.adjust("ABC-0001", "A-01-1", 7, DAY) is None
