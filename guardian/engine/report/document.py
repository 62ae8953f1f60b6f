"""The run report document (report.json) built from a RunOutcome, and where reports live."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardian.core.fsutil import atomic_write_text
from guardian.core.jsonl import write_json
from guardian.engine.report.html import render_html
from guardian.engine.report.markdown import render_markdown
from guardian.errors import StateError

if TYPE_CHECKING:
    from guardian.engine.outcome import RunOutcome
    from guardian.store.state import StateStore


RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")
# report.json's layout; bump when a field changes meaning or goes away.
SCHEMA_VERSION = 3
FORMATS = ("md", "json", "html")


def reports_dir(home: Path) -> Path:
    """Where run reports live under the state dir."""
    return home / "reports"


def _step_dir(outcome: RunOutcome, *steps: str) -> Path | None:
    """The artifact dir of the last step of these names in the run."""
    found = None
    for s in outcome.steps:
        if s.step in steps and s.path:
            found = s.path
    return found


def _loss_curve(outcome: RunOutcome) -> list[dict[str, Any]]:
    """The train step's loss log (step and loss, or step and val_loss), for the plot."""
    train_dir = _step_dir(outcome, "train")
    log_file = train_dir / "loss_log.jsonl" if train_dir else None
    if log_file is None or not log_file.is_file():
        return []
    keep = ("step", "loss", "val_loss")
    rows = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    return [{k: r[k] for k in keep if k in r} for r in rows if isinstance(r, dict)]


def _pairs(mapping: Any) -> str:
    if not isinstance(mapping, dict):
        return str(mapping)
    return ", ".join(f"{k} {v}" for k, v in mapping.items())


def _card(outcome: RunOutcome) -> list[tuple[str, str]]:
    """The validated dataset card in a few lines: samples kept per split, question types,
    what was dropped and why, and the RAFT oracle share (pairs: JSON keeps their order)."""
    data_dir = _step_dir(outcome, "validate")
    card_file = data_dir / "card.json" if data_dir else None
    if card_file is None or not card_file.is_file():
        return []
    card = json.loads(card_file.read_text())
    if not isinstance(card, dict):
        return []
    out: list[tuple[str, str]] = []
    if "kept" in card:
        out.append(("samples kept", _pairs(card["kept"])))
    if "question_type_totals" in card:
        out.append(("question types", _pairs(card["question_type_totals"])))
    if isinstance(card.get("dropped"), dict):
        dropped = {k: v for k, v in card["dropped"].items() if v}
        out.append(("dropped", _pairs(dropped) if dropped else "none"))
    oracle = card.get("oracle", {}).get("all") if isinstance(card.get("oracle"), dict) else None
    if isinstance(oracle, dict) and "fraction" in oracle:
        out.append(("RAFT samples with the oracle document", f"{100 * oracle['fraction']:.0f}%"))
    trained = next((s.metrics for s in outcome.steps if s.step == "train"), {})
    if "answers_cut" in trained and trained.get("n_train"):
        out.append(
            (
                "training answers cut at max_len",
                f"{trained['answers_cut']} of {trained['n_train']} "
                f"(RAFT contexts shrunk to fit: {trained.get('contexts_shrunk', 0)})",
            )
        )
    return out


def _examples(outcome: RunOutcome, limit: int = 10) -> list[dict[str, Any]]:
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
        "schema_version": SCHEMA_VERSION,
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
        "warnings": list(outcome.warnings),
        "baseline_kind": metrics.get("baseline_kind"),
        "challenger": metrics.get("challenger"),
        "baseline": metrics.get("baseline"),
        "baseline_note": metrics.get("baseline_note"),
        "difference_ci": metrics.get("difference_ci"),
        "gate_inputs": outcome.gate_inputs,
        "steps": steps,
        "all_cached": bool(steps) and all(s["cache"] == "hit" for s in steps),
        "examples": _examples(outcome),
        "probe": metrics.get("probe"),
        "probe_examples": _probe_examples(outcome),
        "loss_curve": _loss_curve(outcome),
        "card": _card(outcome),
        "override": None,
    }


def _probe_examples(outcome: RunOutcome, limit: int = 5) -> list[dict[str, Any]]:
    """A few probe questions, one per kind, with both models' open-book answers."""
    eval_dir = next((s.path for s in outcome.steps if s.step == "evaluate" and s.path), None)
    rows_file = eval_dir / "probe_items.jsonl" if eval_dir else None
    if rows_file is None or not rows_file.is_file():
        return []
    picked: dict[str, dict[str, Any]] = {}
    for line in rows_file.read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") not in picked:
            picked[row["kind"]] = {
                key: row.get(key)
                for key in ("kind", "question", "expected", "retrieved")
                + tuple(f"{r}_{m}_{x}" for r in ("challenger", "baseline")
                        for m in ("open", "closed") for x in ("answer", "correct"))
            }  # fmt: skip
    return list(picked.values())[:limit]


def write_report(home: Path, outcome: RunOutcome) -> Path:
    """Write report.json, report.md and report.html for a run; returns the report dir."""
    return write_views(home, build_report(outcome))


def write_views(home: Path, rep: dict[str, Any]) -> Path:
    """Write a report document as report.json and its md and html views; returns the dir."""
    out = reports_dir(home) / str(rep["run_id"])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", rep)
    atomic_write_text(out / "report.md", render_markdown(rep))
    atomic_write_text(out / "report.html", render_html(rep))
    return out


def render(rep: dict[str, Any], fmt: str) -> str:
    """A report in one of FORMATS."""
    if fmt == "json":
        return json.dumps(rep, indent=2, sort_keys=True) + "\n"
    if fmt == "html":
        return render_html(rep)
    if fmt == "md":
        return render_markdown(rep)
    raise StateError(f"--format: expected one of {', '.join(FORMATS)} (got {fmt!r})")


def load_report(home: Path, run_id: str | None, store: StateStore) -> dict[str, Any]:
    """The report of a run (the latest one when run_id is None)."""
    if run_id is None:
        runs = store.runs.recent(limit=1)
        if not runs:
            raise StateError(f"{home}: no runs yet (try `guardian run-once REPO`)")
        run_id = str(runs[0]["id"])
    if not RUN_ID.fullmatch(run_id):
        raise StateError(f"run '{run_id}': not a run id (see `guardian runs`)")
    path = reports_dir(home) / run_id / "report.json"
    if not path.is_file():
        raise StateError(f"run '{run_id}': no report at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: damaged report ({exc})") from None
    if not isinstance(data, dict):
        raise StateError(f"{path}: damaged report (not a JSON object)")
    return data
