"""Reorder logic: when to order more of a product, and how much."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import mean, pstdev


@dataclass(frozen=True)
class ReorderPolicy:
    """Per-product replenishment settings.

    Attributes:
        lead_time_days: Days between placing an order and receiving it.
        service_level_z: Safety factor; 1.65 covers about 95% of demand spikes.
        min_order: Smallest quantity the supplier accepts.
        pack_size: Orders are rounded up to whole packs of this many units.
    """

    lead_time_days: int = 7
    service_level_z: float = 1.65
    min_order: int = 1
    pack_size: int = 1


def demand_series(daily: dict[date, int], start: date, days: int) -> list[int]:
    """Units shipped on each of `days` consecutive days from `start`, with zeros filled in."""
    return [daily.get(start + timedelta(days=i), 0) for i in range(days)]


def average_daily_demand(series: list[int]) -> float:
    """Mean units shipped per day over the series; 0.0 for an empty series."""
    return float(mean(series)) if series else 0.0


def safety_stock(series: list[int], policy: ReorderPolicy) -> int:
    """Extra units kept to absorb demand swings during the supplier lead time.

    Uses the classic z * sigma * sqrt(lead time) formula, rounded up to whole units.
    """
    if len(series) < 2:
        return 0
    sigma = pstdev(series)
    return math.ceil(policy.service_level_z * sigma * math.sqrt(policy.lead_time_days))


def reorder_point(series: list[int], policy: ReorderPolicy) -> int:
    """Stock level at which a new order should be placed.

    It covers the expected demand during the lead time plus the safety stock.
    """
    lead_demand = average_daily_demand(series) * policy.lead_time_days
    return math.ceil(lead_demand) + safety_stock(series, policy)


def needs_reorder(on_hand: int, on_order: int, series: list[int], policy: ReorderPolicy) -> bool:
    """True when stock on hand plus open orders has fallen to the reorder point or below."""
    return on_hand + on_order <= reorder_point(series, policy)


def round_to_pack(quantity: int, policy: ReorderPolicy) -> int:
    """Round a quantity up to whole packs and to at least the supplier's minimum order."""
    packs = math.ceil(max(quantity, policy.min_order) / policy.pack_size)
    return packs * policy.pack_size


def economic_order_quantity(annual_demand: int, order_cost: int, holding_cost: int) -> int:
    """Classic Wilson EOQ: the order size that minimises ordering plus holding costs.

    Args:
        annual_demand: Units sold per year.
        order_cost: Fixed cost of placing one order, in cents.
        holding_cost: Cost of holding one unit for a year, in cents.

    Returns:
        The economic order quantity in units, at least 1.
    """
    if holding_cost <= 0:
        raise ValueError("holding cost must be positive")
    return max(1, round(math.sqrt(2 * annual_demand * order_cost / holding_cost)))


def suggest_order(on_hand: int, on_order: int, series: list[int], policy: ReorderPolicy) -> int:
    """How many units to order now: enough to get back above the reorder point, else 0.

    The shortfall is topped up by one lead time of average demand and rounded to packs.
    """
    if not needs_reorder(on_hand, on_order, series, policy):
        return 0
    target = reorder_point(series, policy) + average_daily_demand(series) * policy.lead_time_days
    shortfall = math.ceil(target) - on_hand - on_order
    return round_to_pack(max(shortfall, 1), policy)
