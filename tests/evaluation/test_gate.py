from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from guardian.config.skills import GateConfig
from guardian.evaluation.gate import decide


def test_directions_are_declared_never_guessed_from_the_name() -> None:
    cfg = GateConfig(answers=None, primary="perplexity")
    assert cfg.lower_is_better("perplexity") and cfg.lower_is_better("hallucination_rate")
    assert not cfg.lower_is_better("exact_match") and not cfg.lower_is_better("probe_open")
    # a metric whose name ends in _rate is not taken to be lower-is-better
    with pytest.raises(ValidationError, match="no direction for pass_rate"):
        GateConfig(answers=None, primary="pass_rate")
    with pytest.raises(ValidationError, match="no direction for my_loss"):
        GateConfig(answers=None, max_regression={"my_loss": 0.1})
    declared = GateConfig(answers=None, primary="pass_rate", directions={"pass_rate": "higher"})
    assert decide({"pass_rate": 0.9}, {"pass_rate": 0.5}, declared).passed
    assert not decide({"pass_rate": 0.4}, {"pass_rate": 0.5}, declared).passed


def test_margin_over_champion_lower_is_better() -> None:
    cfg = GateConfig(answers=None, primary="perplexity", min_margin=0.10)
    ok = decide({"perplexity": 8.0}, {"perplexity": 10.0}, cfg)
    assert ok.passed, ok.reasons
    assert "-20" not in ok.reasons[0] and "+20.0%" in ok.reasons[0]
    short = decide({"perplexity": 9.5}, {"perplexity": 10.0}, cfg)
    assert not short.passed
    assert short.reasons[0].startswith("FAIL perplexity 9.5 vs champion 10")


def test_margin_higher_is_better_metric() -> None:
    cfg = GateConfig(answers=None, primary="exact_match", min_margin=0.5)
    assert decide({"exact_match": 0.35}, {"exact_match": 0.2}, cfg).passed
    assert not decide({"exact_match": 0.25}, {"exact_match": 0.2}, cfg).passed


def test_a_missing_baseline_value_fails_closed_unless_the_config_allows_it() -> None:
    cfg = GateConfig(
        answers=None, primary="perplexity", min_margin=0.1, max_regression={"probe_closed": 0.1}
    )
    for baseline in (None, {"exact_match": 0.3}):
        d = decide({"perplexity": 6.0, "probe_closed": 0.2}, baseline, cfg, baseline_kind="base")
        assert not d.passed
        assert {c.name for c in d.checks if not c.passed} == {"margin", "regression"}
        assert any("no base value" in r and "missing_baseline: fail" in r for r in d.reasons)
    lenient = cfg.model_copy(update={"missing_baseline": "pass", "ceilings": {"perplexity": 5.0}})
    d = decide({"perplexity": 6.0, "probe_closed": 0.2}, None, lenient, baseline_kind="base")
    assert [c.name for c in d.checks if not c.passed] == ["ceiling"]


def test_absolute_margin_is_in_the_metrics_own_units() -> None:
    cfg = GateConfig(answers=None, primary="probe_open", min_margin=0.15, margin="absolute")
    assert decide({"probe_open": 0.86}, {"probe_open": 0.70}, cfg).passed
    short = decide({"probe_open": 0.80}, {"probe_open": 0.70}, cfg)
    assert not short.passed and "+0.1 improvement (needs >= 0.15)" in short.reasons[0]
    # relative, the same pair is a 14% gain
    assert decide(
        {"probe_open": 0.80}, {"probe_open": 0.70}, GateConfig(answers=None, min_margin=0.14)
    ).passed


def test_floors_and_regression_guard() -> None:
    cfg = GateConfig(
        answers=None,
        primary="perplexity",
        floors={"exact_match": 0.2},
        max_regression={"exact_match": 0.05, "perplexity": 1.0},
    )
    champion = {"perplexity": 10.0, "exact_match": 0.5}
    d = decide({"perplexity": 10.5, "exact_match": 0.40}, champion, cfg)
    failed = {(c.name, c.metric) for c in d.checks if not c.passed}
    assert failed == {("regression", "exact_match"), ("margin", "perplexity")}
    d2 = decide({"perplexity": 11.5, "exact_match": 0.1}, champion, cfg)
    failed2 = {(c.name, c.metric) for c in d2.checks if not c.passed}
    assert failed2 == {
        ("floor", "exact_match"),
        ("regression", "exact_match"),
        ("regression", "perplexity"),
        ("margin", "perplexity"),
    }


def test_missing_or_nan_metric_fails_closed() -> None:
    cfg = GateConfig(answers=None, primary="perplexity", floors={"codebleu": 0.1})
    d = decide({"perplexity": math.nan}, {"perplexity": 3.0}, cfg)
    assert not d.passed
    assert {c.name for c in d.checks if not c.passed} == {"floor", "margin"}


def test_decide_is_pure() -> None:
    cfg = GateConfig(answers=None, primary="perplexity", min_margin=0.05)
    chal, champ = {"perplexity": 3.0}, {"perplexity": 4.0}
    first = decide(chal, champ, cfg)
    assert decide(chal, champ, cfg) == first
    assert chal == {"perplexity": 3.0} and champ == {"perplexity": 4.0}


def test_require_significant_needs_the_interval_of_the_difference_to_clear_the_margin() -> None:
    cfg = GateConfig(
        answers=None,
        primary="probe_open",
        min_margin=0.05,
        margin="absolute",
        require_significant=True,
    )
    chal, base = {"probe_open": 0.70}, {"probe_open": 0.50}
    sure = decide(chal, base, cfg, "base", {"probe_open": [0.08, 0.31]})
    assert sure.passed, sure.reasons
    assert "[0.08, 0.31] gives at worst +0.08" in sure.reasons[0]
    noisy = decide(chal, base, cfg, "base", {"probe_open": [-0.02, 0.40]})
    assert not noisy.passed and "at worst -0.02" in noisy.reasons[0]
    missing = decide(chal, base, cfg, "base", {"perplexity": [-1.0, -0.5]})
    assert not missing.passed and "no interval of the difference" in missing.reasons[0]
    # without the flag the same noisy gain passes on its point estimate
    plain = cfg.model_copy(update={"require_significant": False})
    assert decide(chal, base, plain, "base", {"probe_open": [-0.02, 0.40]}).passed


def test_require_significant_on_a_lower_is_better_metric_uses_the_upper_end() -> None:
    cfg = GateConfig(answers=None, primary="perplexity", min_margin=0.10, require_significant=True)
    chal, base = {"perplexity": 8.0}, {"perplexity": 10.0}
    # relative: the difference -2 is a 20% gain; its interval's upper end -1.5 is 15%
    assert decide(chal, base, cfg, "champion", {"perplexity": [-2.6, -1.5]}).passed
    short = decide(chal, base, cfg, "champion", {"perplexity": [-2.6, -0.5]})
    assert not short.passed and "at worst +5.0%" in short.reasons[0]


def test_a_challenger_that_forgets_the_guard_set_is_refused() -> None:
    cfg = GateConfig(answers=None, primary="probe_open", min_margin=0.05, max_guard_rise=0.10)
    better_on_repo = {"probe_open": 0.80, "guard_perplexity": 14.0}
    base = {"probe_open": 0.40, "guard_perplexity": 10.0}
    d = decide(better_on_repo, base, cfg, "base")
    assert not d.passed and [c.name for c in d.checks if not c.passed] == ["guard"]
    assert "guard_perplexity 14 vs base 10: +40.0% (allowed rise 10.0%)" in d.reasons[-1]
    kept = decide({"probe_open": 0.80, "guard_perplexity": 10.5}, base, cfg, "base")
    assert kept.passed, kept.reasons
    missing = decide({"probe_open": 0.80}, base, cfg, "base")
    assert (
        not missing.passed and "guard_perplexity: challenger value missing" in missing.reasons[-1]
    )
    no_base = decide(better_on_repo | {"guard_perplexity": 9.0}, {"probe_open": 0.4}, cfg, "base")
    assert [c.name for c in no_base.checks if not c.passed] == ["guard"]


def test_a_challenger_trained_on_too_few_samples_is_refused() -> None:
    cfg = GateConfig(answers=None, primary="probe_open", min_margin=0.05, min_train_samples=100)
    better, base = {"probe_open": 0.80}, {"probe_open": 0.40}
    few = decide(better, base, cfg, "base", train_samples=40)
    assert not few.passed
    assert [c.name for c in few.checks if not c.passed] == ["train_samples"]
    assert "FAIL training samples 40 (needs >= 100)" in few.reasons
    assert decide(better, base, cfg, "base", train_samples=100).passed
    unknown = decide(better, base, cfg, "base")
    assert not unknown.passed and "count unknown" in unknown.reasons[0]
    assert decide(
        better, base, GateConfig(answers=None, primary="probe_open", min_margin=0.05), "base"
    ).passed


def _answer_metrics(score: float, collapse: float, invented: float) -> dict[str, float]:
    out = {"probe_open": 0.9, "collapse_open": collapse, "invented_open": invented}
    out |= {f"answers_open_{k}": score for k in ("explain", "howto", "where", "usage", "code")}
    return out


def test_a_probe_gain_bought_by_collapsed_answers_is_refused() -> None:
    cfg = GateConfig(primary="probe_open", min_margin=0.05, answers={"modes": ["open"]})
    base = _answer_metrics(0.5, 0.0, 0.4) | {"probe_open": 0.3}
    good = _answer_metrics(0.6, 0.05, 0.4)
    decision = decide(good, base, cfg, "base")
    assert decision.passed, decision.reasons
    assert sum(c.metric.startswith("answers_open_") for c in decision.checks) == 5

    collapsed = decide(_answer_metrics(0.6, 0.25, 0.4), base, cfg, "base")
    assert not collapsed.passed
    (bad,) = [c for c in collapsed.checks if not c.passed]
    assert bad.name == "collapse" and "25%" in bad.detail and "10%" in bad.detail

    worse = good | {"answers_open_howto": 0.30}  # 0.5 -> 0.3: a drop of 0.2 > 0.15
    refused = decide(worse, base, cfg, "base")
    assert [c.metric for c in refused.checks if not c.passed] == ["answers_open_howto"]

    inventing = decide(good | {"invented_open": 0.6}, base, cfg, "base")
    assert [c.metric for c in inventing.checks if not c.passed] == ["invented_open"]

    missing = {k: v for k, v in good.items() if k != "answers_open_code"}
    assert not decide(missing, base, cfg, "base").passed  # fails closed


def test_answer_checks_cover_both_modes_by_default() -> None:
    cfg = GateConfig(primary="probe_open")
    metrics = {"probe_open": 0.9}
    for mode in ("open", "closed"):
        metrics |= {f"collapse_{mode}": 0.0, f"invented_{mode}": 0.0}
        metrics |= {
            f"answers_{mode}_{k}": 0.5 for k in ("explain", "howto", "where", "usage", "code")
        }
    decision = decide(metrics, metrics, cfg, "champion")
    assert decision.passed, decision.reasons
    assert {c.metric for c in decision.checks if c.name == "collapse"} == {
        "collapse_open",
        "collapse_closed",
    }
