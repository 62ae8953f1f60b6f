from __future__ import annotations

import math

from guardian.config.skills import GateConfig
from guardian.evaluation.gate import decide, lower_is_better


def test_direction_of_known_metrics() -> None:
    assert lower_is_better("perplexity")
    assert lower_is_better("hallucination_rate")
    assert not lower_is_better("exact_match")
    assert not lower_is_better("codebleu")


def test_margin_over_champion_lower_is_better() -> None:
    cfg = GateConfig(primary="perplexity", min_margin=0.10)
    ok = decide({"perplexity": 8.0}, {"perplexity": 10.0}, cfg)
    assert ok.passed, ok.reasons
    assert "-20" not in ok.reasons[0] and "+20.0%" in ok.reasons[0]
    short = decide({"perplexity": 9.5}, {"perplexity": 10.0}, cfg)
    assert not short.passed
    assert short.reasons[0].startswith("FAIL perplexity 9.5 vs champion 10")


def test_margin_higher_is_better_metric() -> None:
    cfg = GateConfig(primary="exact_match", min_margin=0.5)
    assert decide({"exact_match": 0.35}, {"exact_match": 0.2}, cfg).passed
    assert not decide({"exact_match": 0.25}, {"exact_match": 0.2}, cfg).passed


def test_first_model_without_baseline_passes_margin_but_not_ceiling() -> None:
    cfg = GateConfig(min_margin=0.1, ceilings={"perplexity": 5.0})
    d = decide({"perplexity": 6.0}, None, cfg, baseline_kind="base")
    assert not d.passed
    assert [c.name for c in d.checks if not c.passed] == ["ceiling"]
    assert any("no base value" in r for r in d.reasons)


def test_floors_and_regression_guard() -> None:
    cfg = GateConfig(
        floors={"exact_match": 0.2}, max_regression={"exact_match": 0.05, "perplexity": 1.0}
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
    cfg = GateConfig(floors={"codebleu": 0.1})
    d = decide({"perplexity": math.nan}, {"perplexity": 3.0}, cfg)
    assert not d.passed
    assert {c.name for c in d.checks if not c.passed} == {"floor", "margin"}


def test_decide_is_pure() -> None:
    cfg = GateConfig(min_margin=0.05)
    chal, champ = {"perplexity": 3.0}, {"perplexity": 4.0}
    first = decide(chal, champ, cfg)
    assert decide(chal, champ, cfg) == first
    assert chal == {"perplexity": 3.0} and champ == {"perplexity": 4.0}
