"""The quality gate: a pure function from (challenger, champion, config) to a Decision."""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, Field

from guardian.config.skills import GateConfig


class Check(BaseModel):
    """One gate check and its outcome, phrased for a human."""

    name: str
    metric: str
    passed: bool
    detail: str


class Decision(BaseModel):
    """Whether the challenger may be promoted, with one reason per check."""

    passed: bool
    reasons: list[str]
    checks: list[Check] = Field(default_factory=list)
    baseline_kind: str = "base"


def _value(metrics: Mapping[str, float] | None, metric: str) -> float | None:
    if metrics is None or metric not in metrics:
        return None
    try:
        value = float(metrics[metric])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _margin(
    challenger: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    config: GateConfig,
    baseline_kind: str,
) -> Check:
    """The primary metric's check: the challenger beats the baseline by `min_margin`."""
    primary = config.primary
    new, old = _value(challenger, primary), _value(baseline, primary)
    if new is None:
        detail = f"{primary}: challenger value missing or not finite"
        return Check(name="margin", metric=primary, passed=False, detail=detail)
    if old is None:
        detail = (
            f"{primary}: no {baseline_kind} value to compare against "
            f"(missing_baseline: {config.missing_baseline})"
        )
        ok = config.missing_baseline == "pass"
        return Check(name="margin", metric=primary, passed=ok, detail=detail)
    sign = -1.0 if config.lower_is_better(primary) else 1.0
    if config.margin == "absolute":
        gain = sign * (new - old)
        shown, needed = f"{gain:+.4g}", f"{config.min_margin:.4g}"
    else:
        gain = sign * (new - old) / (abs(old) if old != 0 else 1.0)
        shown, needed = f"{gain:+.1%}", f"{config.min_margin:.1%}"
    detail = (
        f"{primary} {_fmt(new)} vs {baseline_kind} {_fmt(old)}: "
        f"{shown} improvement (needs >= {needed})"
    )
    return Check(name="margin", metric=primary, passed=gain >= config.min_margin, detail=detail)


def decide(
    challenger: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    config: GateConfig,
    baseline_kind: str = "champion",
) -> Decision:
    """Judge the challenger: floors, ceilings, margin over baseline, bounded regressions."""
    checks: list[Check] = []

    def add(name: str, metric: str, ok: bool, detail: str) -> None:
        checks.append(Check(name=name, metric=metric, passed=ok, detail=detail))

    for metric, floor in sorted(config.floors.items()):
        val = _value(challenger, metric)
        if val is None:
            add("floor", metric, False, f"{metric}: missing or not a finite number")
        else:
            add("floor", metric, val >= floor, f"{metric} {_fmt(val)} >= floor {_fmt(floor)}")
    for metric, ceiling in sorted(config.ceilings.items()):
        val = _value(challenger, metric)
        if val is None:
            add("ceiling", metric, False, f"{metric}: missing or not a finite number")
        else:
            add(
                "ceiling",
                metric,
                val <= ceiling,
                f"{metric} {_fmt(val)} <= ceiling {_fmt(ceiling)}",
            )

    checks.append(_margin(challenger, baseline, config, baseline_kind))

    for metric, allowed in sorted(config.max_regression.items()):
        new_v, old_v = _value(challenger, metric), _value(baseline, metric)
        if new_v is None:
            add("regression", metric, False, f"{metric}: challenger value missing or not finite")
            continue
        if old_v is None:
            add(
                "regression",
                metric,
                config.missing_baseline == "pass",
                f"{metric}: no {baseline_kind} value to compare "
                f"(missing_baseline: {config.missing_baseline})",
            )
            continue
        worse = (new_v - old_v) if config.lower_is_better(metric) else (old_v - new_v)
        add(
            "regression",
            metric,
            worse <= allowed,
            f"{metric} {_fmt(new_v)} vs {baseline_kind} {_fmt(old_v)}: "
            f"worse by {_fmt(max(worse, 0.0))} (allowed {_fmt(allowed)})",
        )

    passed = all(c.passed for c in checks)
    reasons = [("PASS " if c.passed else "FAIL ") + c.detail for c in checks]
    return Decision(passed=passed, reasons=reasons, checks=checks, baseline_kind=baseline_kind)
