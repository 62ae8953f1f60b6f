"""The self-contained HTML view of a run report (report.html): no scripts, no external files.

Decision first; then each gate rule with its value, threshold and outcome; the metric table
with intervals; the loss curve as inline SVG; the knowledge probe; the data card; and test
questions with both models' answers side by side.
"""

from __future__ import annotations

from html import escape
from typing import Any

from guardian.engine.report.markdown import answer_rows, header_facts, metric_rows, verdict

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
h1 .badge{padding:.1rem .6rem;border-radius:.3rem;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}.other{background:#6e7781}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.ok{color:#1a7f37;font-weight:600}td.bad{color:#cf222e;font-weight:600}
pre{white-space:pre-wrap;margin:0;font-size:13px}.muted{color:#6e7781}
svg{border:1px solid #d0d7de;background:#fff}
"""


def _cell(value: Any) -> str:
    return f"<td>{escape(str(value))}</td>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; `rows` cells are already-rendered <td> strings."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _gate(rep: dict[str, Any]) -> str:
    decision = rep.get("decision")
    if not decision:
        return (
            "<h2>Gate</h2><p class='muted'>No gate decision (the playbook has no evaluation).</p>"
        )
    rows = []
    for check in decision.get("checks") or []:
        ok = bool(check.get("passed"))
        outcome = f"<td class='{'ok' if ok else 'bad'}'>{'PASS' if ok else 'FAIL'}</td>"
        rows.append([_cell(check.get("name")), _cell(check.get("metric")),
                     _cell(check.get("detail")), outcome])  # fmt: skip
    if not rows:
        rows = [[_cell(r), _cell(""), _cell(""), _cell("")] for r in decision.get("reasons", [])]
    return "<h2>Gate</h2>" + _table(["rule", "metric", "value and threshold", "outcome"], rows)


def _metrics(rep: dict[str, Any]) -> str:
    if not rep.get("challenger"):
        return ""
    kind = rep.get("baseline_kind") or "baseline"
    rows = [[_cell(text) for text in row] for row in metric_rows(rep)]
    note = (
        "<p class='muted'>Brackets: paired bootstrap 95% intervals over the same items; the "
        f"difference is challenger − {escape(kind)}.</p>"
    )
    head = ["metric", kind, "challenger", "difference", "better"]
    return "<h2>Metrics</h2>" + note + _table(head, rows)


def _loss_svg(curve: list[dict[str, Any]], width: int = 640, height: int = 220) -> str:
    """Training loss per step (line) and validation loss (dots) as an inline SVG chart."""
    train = [(float(p["step"]), float(p["loss"])) for p in curve if "loss" in p]
    val = [(float(p["step"]), float(p["val_loss"])) for p in curve if "val_loss" in p]
    points = train + val
    if len(train) < 2:
        return "<p class='muted'>Too few steps for a loss curve.</p>"
    pad = 36
    x_hi = max(s for s, _ in points) or 1.0
    y_hi = max(v for _, v in points) or 1.0

    def xy(step: float, value: float) -> str:
        x = pad + (width - 2 * pad) * step / x_hi
        y = height - pad - (height - 2 * pad) * value / y_hi
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(s, v) for s, v in train)
    dots = "".join(
        f"<circle cx='{xy(s, v).split(',')[0]}' cy='{xy(s, v).split(',')[1]}' r='4' "
        "fill='#cf222e'/>"
        for s, v in val
    )
    axes = (
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' "
        "stroke='#888'/>"
        f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{height - pad}' stroke='#888'/>"
        f"<text x='{pad}' y='{pad - 8}' font-size='12'>loss (max {y_hi:.3g})</text>"
        f"<text x='{width - pad}' y='{height - 10}' font-size='12' text-anchor='end'>"
        f"step (last {int(x_hi)})</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='training loss curve'>{axes}"
        f"<polyline fill='none' stroke='#0969da' stroke-width='2' points='{line}'/>{dots}</svg>"
        "<p class='muted'>Blue: training loss per step. Red: validation loss.</p>"
    )


def _probe(rep: dict[str, Any]) -> str:
    probe = rep.get("probe")
    if not probe or "challenger" not in probe:
        return ""
    chal, base = probe["challenger"], probe.get("baseline", {})
    kinds = sorted(chal.get("open", {}).get("by_kind", {}))

    def pct(row: dict[str, Any], key: str | None) -> str:
        value = row.get("accuracy") if key is None else row.get("by_kind", {}).get(key)
        return "—" if value is None else f"{100 * value:.0f}%"

    rows = [
        [_cell(k)] + [_cell(pct(r.get(m, {}), k)) for r in (chal, base) for m in ("closed", "open")]
        for k in kinds
    ]
    rows.append(
        [_cell("all")]
        + [_cell(pct(r.get(m, {}), None)) for r in (chal, base) for m in ("closed", "open")]
    )
    kind = rep.get("baseline_kind") or "baseline"
    head = ["kind", "challenger closed", "challenger open", f"{kind} closed", f"{kind} open"]
    recall = chal.get("retrieval_recall")
    extra = "" if recall is None else f"<p>Retrieval recall@k: {100 * recall:.0f}%</p>"
    return f"<h2>Knowledge probe ({chal.get('n', 0)} questions)</h2>" + _table(head, rows) + extra


def _answers(rep: dict[str, Any]) -> str:
    head, rows = answer_rows(rep)
    if not rows:
        return ""
    examples = "".join(
        f"<p><b>{escape(ex['kind'])}</b>: {escape(str(ex['question']))}<br>"
        f"challenger: {escape(str(ex.get('challenger_answer') or ''))}<br>"
        f"baseline: {escape(str(ex.get('baseline_answer') or ''))}</p>"
        for ex in rep.get("answer_examples") or []
    )
    body = [[_cell(c) for c in row] for row in rows]
    return "<h2>Answer quality</h2>" + _table(head, body) + examples


def _card(rep: dict[str, Any]) -> str:
    card = rep.get("card")
    if not card:
        return ""
    rows = [[_cell(k), _cell(v)] for k, v in card]
    return "<h2>Data</h2>" + _table(["field", "value"], rows)


def _clip(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _examples(rep: dict[str, Any]) -> str:
    examples = rep.get("examples") or []
    if not examples:
        return ""
    kind = rep.get("baseline_kind") or "baseline"
    rows = [
        [
            f"<td><pre>{escape(_clip(str(ex.get('question', ''))))}</pre></td>",
            f"<td><pre>{escape(str(ex.get('reference', '')))}</pre></td>",
            f"<td><pre>{escape(str(ex.get('challenger', '')))}</pre></td>",
            f"<td><pre>{escape(str(ex.get('baseline', '')))}</pre></td>",
        ]
        for ex in examples
    ]
    head = ["question", "reference", "challenger", kind]
    return "<h2>Test questions, both models</h2>" + _table(head, rows)


_LABELS = {
    "outcome": "outcome: ",
    "override": "<strong id='override'>override</strong>: ",
    "warning": "<strong>warning</strong>: ",
}


def _fact(label: str, parts: tuple[str, ...]) -> str:
    """One header fact as list-item HTML; odd-numbered parts are code."""
    value = "".join(
        f"<code>{escape(part)}</code>" if i % 2 else escape(part) for i, part in enumerate(parts)
    )
    return _LABELS.get(label, f"{label} ") + value


def render_html(rep: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    word = verdict(rep)
    badge = "pass" if word == "PASS" else "fail" if "FAIL" in word else "other"
    facts = [_fact(label, parts) for label, parts in header_facts(rep)]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Repo Guardian report — {escape(word)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Repo Guardian report <span class='badge {badge}' id='decision'>{escape(word)}</span>"
        "</h1>",
        "<ul>" + "".join(f"<li>{f}</li>" for f in facts) + "</ul>",
        _gate(rep),
        _metrics(rep),
        "<h2>Training</h2>" + _loss_svg(rep.get("loss_curve") or []),
        _probe(rep),
        _answers(rep),
        _card(rep),
        _examples(rep),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)
