from __future__ import annotations

import math

import pytest

from guardian.evaluation.stats import PairedItems, paired_intervals, point


def test_point_is_the_weighted_mean_through_the_transform() -> None:
    items = PairedItems([1.0, 3.0], [2.0, 2.0], weights=[1, 3], transform="exp")
    chal, base = point(items)
    assert chal == pytest.approx(math.exp((1 * 1 + 3 * 3) / 4))
    assert base == pytest.approx(math.exp(2.0))


def test_a_sure_difference_has_a_tight_interval() -> None:
    ci = paired_intervals({"acc": PairedItems([1.0] * 20, [0.0] * 20)})
    assert ci["challenger"]["acc"] == (1.0, 1.0) and ci["baseline"]["acc"] == (0.0, 0.0)
    assert ci["difference"]["acc"] == (1.0, 1.0)


def test_a_coin_has_the_textbook_width_and_the_seed_fixes_it() -> None:
    coin = [float(i % 2) for i in range(100)]
    ci = paired_intervals({"acc": PairedItems(coin, [0.5] * 100)})
    lo, hi = ci["challenger"]["acc"]
    # normal approximation: 0.5 +- 1.96 * sqrt(0.25 / 100) = [0.402, 0.598]
    assert lo < 0.5 < hi and 0.15 < hi - lo < 0.25
    assert paired_intervals({"acc": PairedItems(coin, [0.5] * 100)}) == ci
    smooth = {"x": PairedItems([(i * 37 % 101) / 101 for i in range(50)], [0.5] * 50)}
    assert paired_intervals(smooth, seed=1) != paired_intervals(smooth, seed=2)


def test_pairing_makes_a_shared_noise_cancel() -> None:
    # both models vary wildly per item, but the challenger is always 0.1 better
    base = [float(i % 7) for i in range(60)]
    chal = [b + 0.1 for b in base]
    ci = paired_intervals({"score": PairedItems(chal, base)})
    lo, hi = ci["difference"]["score"]
    assert lo == pytest.approx(0.1) and hi == pytest.approx(0.1)
    c_lo, c_hi = ci["challenger"]["score"]
    assert c_hi - c_lo > 0.5  # each model's own interval is wide (sd 2, n 60: ~1.0)


def test_one_flipped_item_is_noise() -> None:
    base = [1.0, 0.0] * 10
    chal = list(base)
    chal[1] = 1.0
    lo, hi = paired_intervals({"acc": PairedItems(chal, base)})["difference"]["acc"]
    assert lo <= 0.0 < hi


def test_missing_values_weigh_nothing_and_too_few_items_get_no_interval() -> None:
    nan = float("nan")
    ci = paired_intervals(
        {
            "ppl": PairedItems([1.0, nan, 1.0], [2.0, 2.0, 2.0], [1, 1, 1], "exp"),
            "tiny": PairedItems([1.0], [0.0]),
        }
    )
    assert ci["challenger"]["ppl"] == pytest.approx((math.e, math.e))
    assert "tiny" not in ci["challenger"] and "tiny" not in ci["difference"]
    with pytest.raises(ValueError, match="differ in length"):
        paired_intervals({"bad": PairedItems([1.0, 2.0], [1.0])})
