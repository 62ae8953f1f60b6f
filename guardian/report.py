"""Gate reports: report.json (machine-readable) and report.md (for people) per run."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardian.errors import StateError
from guardian.gate import lower_is_better
from guardian.records import write_json

if TYPE_CHECKING:
    from guardian.pipeline import RunOutcome
    from guardian.state import StateStore

TABLE_METRICS = ("perplexity", "mean_nll", "exact_match", "n", "answer_tokens")


def reports_dir(home: Path) -> Path:
    """Where run reports live under the state dir."""
    return home / "reports"


def _examples(outcome: RunOutcome, limit: int = 3) -> list[dict[str, Any]]:
    """A few evaluated test questions with the reference, challenger and baseline answers."""
    eval_dir = next((s.path for s in outcome.steps if s.step == "evaluate" and s.path), None)
    data_dir = None
    for s in outcome.steps:
        if s.step in {"synthesize", "validate"} and s.path:
            data_dir = s.path
    if eval_dir is None or data_dir is None:
        return []
    items_file, metrics_file = eval_dir / "items.jsonl", eval_dir / "metrics.json"
    if not items_file.is_file() or not metrics_file.is_file():
        return []
    split = json.loads(metrics_file.read_text()).get("split", "test")
    split_file = data_dir / f"{split}.jsonl"
    if not split_file.is_file():
        return []
    questions = [json.loads(line) for line in split_file.read_text().splitlines() if line]
    picked = []
    for line in items_file.read_text().splitlines():
        item = json.loads(line)
        if "challenger_answer" not in item or item.get("index", -1) >= len(questions):
            continue
        sample = questions[item["index"]]
        picked.append(
            {
                "question": sample.get("input", ""),
                "reference": item.get("reference", sample.get("output", "")),
                "challenger": item.get("challenger_answer"),
                "baseline": item.get("baseline_answer"),
                "question_type": item.get("question_type"),
            }
        )
        if len(picked) >= limit:
            break
    return picked


def build_report(outcome: RunOutcome) -> dict[str, Any]:
    """The report document for a run (also the source of the markdown view)."""
    steps = [
        {
            "position": s.position,
            "skill": s.skill,
            "step": s.step,
            "status": s.status,
            "cache": "hit" if s.status == "cached" else "miss",
            "seconds": round(s.seconds, 3),
            "key": s.key,
            "metrics": s.metrics,
        }
        for s in outcome.steps
    ]
    decision = outcome.decision.model_dump() if outcome.decision else None
    metrics = outcome.metrics or {}
    return {
        "run_id": outcome.run_id,
        "repo": str(outcome.repo),
        "repo_name": outcome.repo_name,
        "commit": outcome.commit,
        "playbook": outcome.playbook,
        "status": outcome.status,
        "started": outcome.started,
        "finished": outcome.finished,
        "seconds": round(max(outcome.finished - outcome.started, 0.0), 3),
        "decision": decision,
        "promoted_path": str(outcome.promoted_path) if outcome.promoted_path else None,
        "note": outcome.note,
        "baseline_kind": metrics.get("baseline_kind"),
        "challenger": metrics.get("challenger"),
        "baseline": metrics.get("baseline"),
        "steps": steps,
        "all_cached": bool(steps) and all(s["cache"] == "hit" for s in steps),
        "examples": _examples(outcome),
    }


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _quote(text: Any, limit: int = 300) -> str:
    flat = " ".join(str(text or "").split())
    return "`" + (flat if len(flat) <= limit else flat[: limit - 1] + "…").replace("`", "'") + "`"


def render_markdown(rep: dict[str, Any]) -> str:
    """The human view of a report: verdict first, then reasons, metrics and steps."""
    decision = rep.get("decision")
    if rep["status"] != "succeeded":
        verdict = f"RUN {rep['status'].upper()}"
    elif decision is None:
        verdict = "NO DECISION"
    else:
        verdict = "PASS" if decision["passed"] else "FAIL"
    lines = [
        f"# Repo Guardian report — {verdict}",
        "",
        f"- run: `{rep['run_id']}` (playbook `{rep['playbook']}`)",
        f"- repo: `{rep['repo']}` at `{rep['commit'][:12]}`",
        f"- duration: {rep['seconds']:.1f} s",
    ]
    if rep.get("note"):
        lines.append(f"- outcome: {rep['note']}")
    if decision:
        lines += ["", "## Gate", ""]
        lines += [f"- {reason}" for reason in decision["reasons"]] or ["- (no checks configured)"]
    chal, base = rep.get("challenger"), rep.get("baseline")
    if chal:
        kind = rep.get("baseline_kind") or "baseline"
        lines += [
            "",
            "## Metrics",
            "",
            f"| metric | {kind} | challenger | better |",
            "|---|---|---|---|",
        ]
        for metric in TABLE_METRICS:
            if metric not in chal:
                continue
            old = base.get(metric) if base else None
            new = chal.get(metric)
            better = ""
            if isinstance(old, int | float) and isinstance(new, int | float) and metric != "n":
                if metric == "answer_tokens":
                    better = ""
                elif new == old:
                    better = "same"
                elif lower_is_better(metric):
                    better = "yes" if new < old else "no"
                else:
                    better = "yes" if new > old else "no"
            lines.append(f"| {metric} | {_num(old)} | {_num(new)} | {better} |")
    if rep["steps"]:
        lines += [
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
    train = next((s for s in rep["steps"] if s["step"] == "train"), None)
    if train and train["metrics"].get("train_loss_first") is not None:
        m = train["metrics"]
        lines += [
            "",
            "## Training",
            "",
            f"- {m.get('steps')} steps on {m.get('n_train')} samples; mean loss of the first "
            "and last 5 steps "
            f"{_num(m.get('train_loss_first'))} → {_num(m.get('train_loss_last'))}, "
            f"validation loss {_num(m.get('val_loss'))}",
        ]
        if m.get("resumed_from"):
            lines.append(f"- resumed from checkpoint at step {m['resumed_from']}")
    if rep.get("examples"):
        lines += ["", "## Examples (greedy answers on the test split)", ""]
        for ex in rep["examples"]:
            lines += [
                f"**Q** ({ex.get('question_type') or 'sample'}): {_quote(ex['question'])}",
                "",
                f"- reference: {_quote(ex['reference'])}",
                f"- challenger: {_quote(ex['challenger'])}",
                f"- {rep.get('baseline_kind') or 'baseline'}: {_quote(ex['baseline'])}",
                "",
            ]
    if rep.get("promoted_path"):
        lines += ["", f"Champion model: `{rep['promoted_path']}`"]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def write_report(home: Path, outcome: RunOutcome) -> Path:
    """Write report.json and report.md for a run; returns the report dir."""
    rep = build_report(outcome)
    out = reports_dir(home) / outcome.run_id
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", rep)
    _write_text(out / "report.md", render_markdown(rep))
    return out


def load_report(home: Path, run_id: str | None, store: StateStore) -> dict[str, Any]:
    """The report of a run (the latest one when run_id is None)."""
    if run_id is None:
        runs = store.list_runs(limit=1)
        if not runs:
            raise StateError(f"{home}: no runs yet (try `guardian run-once REPO`)")
        run_id = str(runs[0]["id"])
    path = reports_dir(home) / run_id / "report.json"
    if not path.is_file():
        raise StateError(f"run '{run_id}': no report at {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data
