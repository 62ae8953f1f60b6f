"""The human view of a run report (report.md): verdict first, then gate, metrics, steps."""

from __future__ import annotations

from typing import Any

from guardian.config.skills import METRIC_DIRECTIONS

TABLE_METRICS = (
    "probe_open",
    "probe_closed",
    "probe_closed_seen",
    "answers_open",
    "answers_closed",
    "collapse_open",
    "collapse_closed",
    "invented_open",
    "invented_closed",
    "perplexity",
    "exact_match",
    "token_f1",
    "hallucination_rate",
    "codebleu",
    "syntax_valid_rate",
    "guard_perplexity",
    "n",
    "answer_tokens",
)


def number(value: Any) -> str:
    """A metric value as the reports print it (4 decimals; an em dash when missing)."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _quote(text: Any, limit: int = 300) -> str:
    flat = " ".join(str(text or "").split())
    return "`" + (flat if len(flat) <= limit else flat[: limit - 1] + "…").replace("`", "'") + "`"


def better(metric: str, old: Any, new: Any) -> str:
    """Whether the challenger's value is the better one, by the metric's declared direction."""
    if not (isinstance(old, int | float) and isinstance(new, int | float)):
        return ""
    if metric in ("n", "answer_tokens"):
        return ""
    if new == old:
        return "same"
    direction = METRIC_DIRECTIONS.get(metric)
    if direction is None:
        return ""
    if direction == "lower":
        return "yes" if new < old else "no"
    return "yes" if new > old else "no"


def _metrics(rep: dict[str, Any]) -> list[str]:
    if not rep.get("challenger"):
        return []
    kind = rep.get("baseline_kind") or "baseline"
    lines = [
        "",
        "## Metrics",
        "",
        "Brackets: paired bootstrap 95% intervals over the same items; the difference is "
        f"challenger − {kind}.",
        "",
        f"| metric | {kind} | challenger | difference | better |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in metric_rows(rep)]
    return lines


def metric_rows(rep: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The metric table as text cells: metric, baseline, challenger (each with its interval),
    difference (with its interval) and whether the challenger is better."""
    chal, base = rep.get("challenger") or {}, rep.get("baseline") or {}
    diff = rep.get("difference_ci") or {}
    rows = []
    for metric in TABLE_METRICS:
        if metric not in chal:
            continue
        old, new = base.get(metric), chal.get(metric)
        rows.append(
            (
                metric,
                number(old) + interval_text(base, metric),
                number(new) + interval_text(chal, metric),
                _signed(gap(metric, old, new)) + _bounds(diff.get(metric)),
                better(metric, old, new),
            )
        )
    return rows


def gap(metric: str, old: Any, new: Any) -> float | None:
    """challenger - baseline for a metric (None for counts, or when either is missing)."""
    if metric in ("n", "answer_tokens"):
        return None
    if isinstance(new, int | float) and isinstance(old, int | float):
        return float(new - old)
    return None


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def _short(x: float) -> str:
    return f"{x:.1f}" if abs(x) >= 1000 else f"{x:.4f}".rstrip("0").rstrip(".")


def _bounds(pair: Any) -> str:
    if not (isinstance(pair, list | tuple) and len(pair) == 2):
        return ""
    return f" [{_short(pair[0])}, {_short(pair[1])}]"


def interval_text(role: dict[str, Any] | None, metric: str) -> str:
    """` [lo, hi]` of a metric's interval in a role's `ci`, or nothing."""
    return _bounds(((role or {}).get("ci") or {}).get(metric))


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _probe(rep: dict[str, Any]) -> list[str]:
    probe = rep.get("probe")
    if not probe or "challenger" not in probe:
        return []
    kind = rep.get("baseline_kind") or "baseline"
    chal, base = probe["challenger"], probe.get("baseline", {})
    lines = [
        "",
        "## Knowledge probe",
        "",
        f"{chal['n']} held-out questions about the mined code, worded unlike any training "
        "template; closed-book = the bare question, open-book = with the top retrieved "
        f"documents. Retrieval recall@k: {_pct(chal.get('retrieval_recall'))}.",
        "",
        f"| questions | {kind} closed | challenger closed | {kind} open | challenger open |",
        "|---|---|---|---|---|",
    ]
    rows: list[tuple[str, str | None, str | None]] = [
        ("all", "accuracy", None),
        ("seen files", "seen", None),
        ("unseen files", "unseen", None),
    ]
    rows += [(k, None, k) for k in sorted(chal["open"].get("by_kind", {}))]
    for label, key, by_kind in rows:
        cells = []
        for mode in ("closed", "open"):
            for role in (base, chal):
                row = role.get(mode, {})
                value = row.get("by_kind", {}).get(by_kind) if by_kind else row.get(key or "")
                cells.append(_pct(value))
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    cut = {
        f"{name} {mode}": role[mode]["cut"]
        for name, role in ((kind, base), ("challenger", chal))
        for mode in ("closed", "open")
        if role.get(mode, {}).get("cut")
    }
    if cut:
        counts = ", ".join(f"{label} {n}" for label, n in cut.items())
        lines += [
            "",
            f"Answers that ran out of new tokens (`probe_max_new_tokens`): {counts}. "
            "A cut answer may have lost its final answer; raise the budget if the "
            "challenger's are many.",
        ]
    for ex in rep.get("probe_examples") or []:
        mark = {True: "right", False: "wrong", None: "—"}
        lines += [
            "",
            f"**{ex['kind']}**: {_quote(ex['question'])} — expected "
            f"{_quote(', '.join(ex['expected']))}",
            f"- challenger (open): {_quote(ex.get('challenger_open_answer'))} "
            f"({mark[ex.get('challenger_open_correct')]})",
            f"- {kind} (open): {_quote(ex.get('baseline_open_answer'))} "
            f"({mark[ex.get('baseline_open_correct')]})",
        ]
    return lines


def answer_rows(rep: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The answer-quality table as text cells, header first: per kind (then all, collapse and
    invented identifiers) the baseline's and the challenger's figures closed- and open-book."""
    answers = rep.get("answers") or {}
    if "challenger" not in answers:
        return [], []
    kind = rep.get("baseline_kind") or "baseline"
    roles = (answers.get("baseline") or {}, answers["challenger"])
    head = ["questions", f"{kind} closed", "challenger closed", f"{kind} open", "challenger open"]
    kinds = sorted((roles[1].get("open") or {}).get("by_kind") or {})
    rows = []
    for label, key, fmt in (
        *((k, k, _pct) for k in kinds),
        ("all", "score", _pct),
        ("collapsed (explain/how-to/code)", "collapse", _pct),
        ("invented identifiers per answer", "invented_per_answer", number),
    ):
        cells = [label]
        for mode in ("closed", "open"):
            for role in roles:
                row = role.get(mode) or {}
                value = (
                    (row.get("by_kind") or {}).get(key, {}).get("score")
                    if key in kinds
                    else row.get(key)
                )
                cells.append(fmt(value))
        rows.append(cells)
    return head, rows


def _answers(rep: dict[str, Any]) -> list[str]:
    head, rows = answer_rows(rep)
    if not rows:
        return []
    lines = [
        "",
        "## Answer quality",
        "",
        "The questions people ask (explain, how-to, where, usage, write the code), built from "
        "the repo's own facts in unseen words and scored by what the repo states: the right "
        "symbol named, the docstring's content carried, prose rather than a bare quote, code "
        "that parses with the right signature and passes the repo's tests for it.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    kind = rep.get("baseline_kind") or "baseline"
    for ex in rep.get("answer_examples") or []:
        lines += [
            "",
            f"**{ex['kind']}**: {_quote(ex['question'])}",
            f"- challenger (open, {_pct(ex.get('challenger_score'))}): "
            f"{_quote(ex.get('challenger_answer'))}",
            f"- {kind} (open, {_pct(ex.get('baseline_score'))}): "
            f"{_quote(ex.get('baseline_answer'))}",
        ]
    return lines


def _steps(rep: dict[str, Any]) -> list[str]:
    if not rep["steps"]:
        return []
    lines = [
        "",
        "## Steps",
        "",
        "| # | skill | step | cache | seconds | key |",
        "|---|---|---|---|---|---|",
    ]
    for s in rep["steps"]:
        lines.append(
            f"| {s['position']} | {s['skill']} | {s['step']} | {s['cache']} ({s['status']}) "
            f"| {s['seconds']:.2f} | `{s['key'][:12]}` |"
        )
    if rep.get("all_cached"):
        lines += ["", "Every step was a cache hit: nothing changed since the last run."]
    return lines


def _training(rep: dict[str, Any]) -> list[str]:
    train = next((s for s in rep["steps"] if s["step"] == "train"), None)
    if not train or train["metrics"].get("train_loss_first") is None:
        return []
    m = train["metrics"]
    lines = [
        "",
        "## Training",
        "",
        f"- {m.get('steps')} steps on {m.get('n_train')} samples; mean loss of the first "
        "and last 5 steps "
        f"{number(m.get('train_loss_first'))} → {number(m.get('train_loss_last'))}, "
        f"validation loss {number(m.get('val_loss'))}",
    ]
    if m.get("coverage") is not None:
        stop = (
            "time budget reached" if m.get("time_budget_hit")
            else "stopped early (validation loss)" if m.get("stopped_early")
            else "as planned"
        )  # fmt: skip
        lines.append(
            f"- {m.get('epochs_done')} epochs ({_pct(m.get('coverage'))} of the plan, {stop}); "
            f"adapter from step {m.get('best_step')}; padding {_pct(m.get('pad_fraction'))}"
        )
    if m.get("files_covered") is not None:
        lines.append(f"- training files covered: {_pct(m.get('files_covered'))}")
    if m.get("resumed_from"):
        lines.append(f"- resumed from checkpoint at step {m['resumed_from']}")
    return lines


def _examples(rep: dict[str, Any]) -> list[str]:
    if not rep.get("examples"):
        return []
    lines = ["", "## Examples (greedy answers on the test split)", ""]
    for ex in rep["examples"][:3]:
        lines += [
            f"**Q** ({ex.get('question_type') or 'sample'}): {_quote(ex['question'])}",
            "",
            f"- reference: {_quote(ex['reference'])}",
            f"- challenger: {_quote(ex['challenger'])}",
            f"- {rep.get('baseline_kind') or 'baseline'}: {_quote(ex['baseline'])}",
            "",
        ]
    return lines


def verdict(rep: dict[str, Any]) -> str:
    """The one-word outcome a report leads with: PASS, FAIL, NO DECISION or RUN <STATUS>."""
    decision = rep.get("decision")
    if rep["status"] != "succeeded":
        return f"RUN {rep['status'].upper()}"
    if decision is None:
        return "NO DECISION"
    return "PASS" if decision["passed"] else "FAIL"


def override_text(rep: dict[str, Any]) -> str | None:
    """The line that says a model was promoted past its failed gate: who, when and why."""
    forced = rep.get("override")
    if not forced:
        return None
    return (
        f"promoted past the failed gate by {forced.get('by')} at {forced.get('at')}: "
        f"{forced.get('reason')}"
    )


def header_facts(rep: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    """The facts listed under a report's title as (label, parts) rows, shared by the markdown
    and HTML views; odd-numbered parts are code (ids, paths, shas) and shown as such."""
    facts: list[tuple[str, tuple[str, ...]]] = [
        ("run", ("", str(rep["run_id"]), " (playbook ", str(rep["playbook"]), ")")),
        ("repo", ("", str(rep["repo"]), " at ", rep["commit"][:12])),
        ("duration", (f"{rep['seconds']:.1f} s",)),
    ]
    if rep.get("note"):
        facts.append(("outcome", (str(rep["note"]),)))
    forced = override_text(rep)
    if forced:
        facts.append(("override", (forced,)))
    facts += [("warning", (str(w),)) for w in rep.get("warnings") or []]
    return facts


def render_markdown(rep: dict[str, Any]) -> str:
    """The human view of a report: verdict first, then reasons, metrics and steps."""
    decision = rep.get("decision")
    lines = [f"# Repo Guardian report — {verdict(rep)}", ""]
    for label, parts in header_facts(rep):
        value = "".join(f"`{part}`" if i % 2 else part for i, part in enumerate(parts))
        lines.append(f"- {'**override**' if label == 'override' else label}: {value}")
    if decision:
        lines += ["", "## Gate", ""]
        lines += [f"- {reason}" for reason in decision["reasons"]] or ["- (no checks configured)"]
    lines += _metrics(rep) + _probe(rep) + _answers(rep) + _steps(rep) + _training(rep)
    lines += _examples(rep)
    if rep.get("promoted_path"):
        lines += ["", f"Champion model: `{rep['promoted_path']}`"]
    return "\n".join(lines) + "\n"
