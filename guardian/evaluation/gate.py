"""The quality gate: a pure function from (challenger, champion, config) to a Decision."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from guardian.config.skills import ANSWER_KINDS, GateConfig
from guardian.store.records import Check, Decision

__all__ = ["Check", "Decision", "decide"]


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
    differences: Mapping[str, Sequence[float]] | None,
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
    scale = 1.0 if config.margin == "absolute" else (abs(old) if old != 0 else 1.0)

    def shown(gain: float) -> str:
        return f"{gain:+.4g}" if config.margin == "absolute" else f"{gain:+.1%}"

    gain = sign * (new - old) / scale
    needed = shown(config.min_margin).lstrip("+")
    detail = (
        f"{primary} {_fmt(new)} vs {baseline_kind} {_fmt(old)}: "
        f"{shown(gain)} improvement (needs >= {needed})"
    )
    passed = gain >= config.min_margin
    if config.require_significant:
        bounds = (differences or {}).get(primary)
        if bounds is None or len(bounds) != 2:
            detail += "; no interval of the difference (require_significant)"
            return Check(name="margin", metric=primary, passed=False, detail=detail)
        worst = min(sign * float(bounds[0]), sign * float(bounds[1])) / scale
        detail += (
            f"; 95% interval of the difference [{_fmt(bounds[0])}, {_fmt(bounds[1])}] "
            f"gives at worst {shown(worst)} (require_significant)"
        )
        passed = passed and worst >= config.min_margin
    return Check(name="margin", metric=primary, passed=passed, detail=detail)


def _guard(
    challenger: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    config: GateConfig,
    baseline_kind: str,
) -> Check:
    """Forgetting: guard-set perplexity may rise at most `max_guard_rise` over the baseline's."""
    allowed = float(config.max_guard_rise or 0.0)
    new, old = _value(challenger, "guard_perplexity"), _value(baseline, "guard_perplexity")
    if new is None:
        detail = "guard_perplexity: challenger value missing or not finite"
        return Check(name="guard", metric="guard_perplexity", passed=False, detail=detail)
    if old is None or old <= 0:
        detail = (
            f"guard_perplexity: no {baseline_kind} value to compare against "
            f"(missing_baseline: {config.missing_baseline})"
        )
        ok = config.missing_baseline == "pass"
        return Check(name="guard", metric="guard_perplexity", passed=ok, detail=detail)
    rise = new / old - 1.0
    detail = (
        f"guard_perplexity {_fmt(new)} vs {baseline_kind} {_fmt(old)}: "
        f"{rise:+.1%} (allowed rise {allowed:.1%})"
    )
    return Check(name="guard", metric="guard_perplexity", passed=rise <= allowed, detail=detail)


def _answers(
    challenger: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    config: GateConfig,
    baseline_kind: str,
) -> list[Check]:
    """Answer quality: no kind falls past its bound, answers do not collapse into a quote and
    a token, and no more identifiers are invented than the baseline invents."""
    bounds = config.answers
    assert bounds is not None
    checks: list[Check] = []
    for mode in bounds.modes:
        for kind in ANSWER_KINDS:
            metric = f"answers_{mode}_{kind}"
            checks.append(
                _bounded(challenger, baseline, config, baseline_kind, metric, bounds.max_kind_drop)
            )
        metric = f"collapse_{mode}"
        share = _value(challenger, metric)
        detail = (
            f"{metric}: challenger value missing or not finite"
            if share is None
            else f"{metric} {share:.0%} of explain/how-to/code answers (allowed "
            f"{bounds.max_collapse:.0%})"
        )
        ok = share is not None and share <= bounds.max_collapse
        checks.append(Check(name="collapse", metric=metric, passed=ok, detail=detail))
        checks.append(
            _bounded(
                challenger,
                baseline,
                config,
                baseline_kind,
                f"invented_{mode}",
                bounds.max_invented_rise,
            )
        )
    return checks


def _bounded(
    challenger: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    config: GateConfig,
    baseline_kind: str,
    metric: str,
    allowed: float,
    name: str = "answers",
) -> Check:
    """`metric` may be worse than the baseline's by at most `allowed` (absolute units)."""
    new, old = _value(challenger, metric), _value(baseline, metric)
    if new is None:
        detail = f"{metric}: challenger value missing or not finite"
        return Check(name=name, metric=metric, passed=False, detail=detail)
    if old is None:
        detail = (
            f"{metric}: no {baseline_kind} value to compare "
            f"(missing_baseline: {config.missing_baseline})"
        )
        return Check(
            name=name, metric=metric, passed=config.missing_baseline == "pass", detail=detail
        )
    worse = (new - old) if config.lower_is_better(metric) else (old - new)
    detail = (
        f"{metric} {_fmt(new)} vs {baseline_kind} {_fmt(old)}: "
        f"worse by {_fmt(max(worse, 0.0))} (allowed {_fmt(allowed)})"
    )
    return Check(name=name, metric=metric, passed=worse <= allowed + 1e-12, detail=detail)


def _train_samples(train_samples: int | None, config: GateConfig) -> Check:
    """Enough data: the challenger was trained on at least `min_train_samples` samples."""
    need = config.min_train_samples
    if train_samples is None:
        detail = f"training samples: count unknown (needs >= {need})"
        return Check(name="train_samples", metric="n_train", passed=False, detail=detail)
    detail = f"training samples {train_samples} (needs >= {need})"
    return Check(
        name="train_samples", metric="n_train", passed=train_samples >= need, detail=detail
    )


def decide(
    challenger: Mapping[str, float],
    baseline: Mapping[str, float] | None,
    config: GateConfig,
    baseline_kind: str = "champion",
    differences: Mapping[str, Sequence[float]] | None = None,
    train_samples: int | None = None,
) -> Decision:
    """Judge the challenger: floors, ceilings, margin over baseline, bounded regressions.

    `differences` maps a metric to the 95% interval of challenger - baseline (the evaluate
    step's `difference_ci`); `require_significant` needs the primary metric's.
    `train_samples` is how many samples the challenger was trained on (`min_train_samples`).
    """
    checks: list[Check] = []
    if config.min_train_samples > 0:
        checks.append(_train_samples(train_samples, config))

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

    checks.append(_margin(challenger, baseline, config, baseline_kind, differences))

    for metric, allowed in sorted(config.max_regression.items()):
        checks.append(
            _bounded(challenger, baseline, config, baseline_kind, metric, allowed, "regression")
        )

    if config.max_guard_rise is not None:
        checks.append(_guard(challenger, baseline, config, baseline_kind))
    if config.answers is not None:
        checks += _answers(challenger, baseline, config, baseline_kind)

    passed = all(c.passed for c in checks)
    reasons = [("PASS " if c.passed else "FAIL ") + c.detail for c in checks]
    return Decision(passed=passed, reasons=reasons, checks=checks, baseline_kind=baseline_kind)
