"""The run report document, built from the run's record in the state and its artifacts.

report.json, report.md and report.html are views of that record, written for people and
other tools; nothing reads them back to decide anything (`guardian report` renders anew).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from guardian.core.fsutil import atomic_write_text
from guardian.core.jsonl import write_json
from guardian.engine.report.html import render_html
from guardian.engine.report.markdown import render_markdown
from guardian.errors import StateError
from guardian.store.artifacts import ArtifactStore
from guardian.store.records import RunRecord, StepRecord
from guardian.store.state import StateStore

# report.json's layout; bump when a field changes meaning or goes away.
SCHEMA_VERSION = 3
FORMATS = ("md", "json", "html")


def reports_dir(home: Path) -> Path:
    """Where run reports live under the state dir."""
    return home / "reports"


@dataclass(frozen=True)
class _Step:
    """A step record with its artifact dir (None when it made none)."""

    record: StepRecord
    path: Path | None

    @property
    def step(self) -> str:
        return self.record.step

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.metrics


def _with_paths(home: Path, steps: list[StepRecord]) -> list[_Step]:
    artifacts = ArtifactStore(home)
    return [_Step(s, artifacts.path(s.artifact_key) if s.artifact_key else None) for s in steps]


def _step_dir(steps: list[_Step], *names: str) -> Path | None:
    """The artifact dir of the last step of these names in the run."""
    found = None
    for s in steps:
        if s.step in names and s.path:
            found = s.path
    return found


def _loss_curve(steps: list[_Step]) -> list[dict[str, Any]]:
    """The train step's loss log (step and loss, or step and val_loss), for the plot."""
    train_dir = _step_dir(steps, "train")
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


def _card(steps: list[_Step]) -> list[tuple[str, str]]:
    """The validated dataset card in a few lines: samples kept per split, question types,
    what was dropped and why, and the RAFT oracle share (pairs: JSON keeps their order)."""
    data_dir = _step_dir(steps, "validate")
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
    fraction = oracle.get("fraction") if isinstance(oracle, dict) else None
    if isinstance(fraction, int | float):
        out.append(("RAFT samples with the oracle document", f"{100 * fraction:.0f}%"))
    trained = next((s.metrics for s in steps if s.step == "train"), {})
    if "answers_cut" in trained and trained.get("n_train"):
        out.append(
            (
                "training answers cut at max_len",
                f"{trained['answers_cut']} of {trained['n_train']} "
                f"(RAFT contexts shrunk to fit: {trained.get('contexts_shrunk', 0)})",
            )
        )
    return out


def _examples(steps: list[_Step], limit: int = 10) -> list[dict[str, Any]]:
    """A few evaluated test questions with the reference, challenger and baseline answers."""
    eval_dir = _step_dir(steps, "evaluate")
    data_dir = _step_dir(steps, "synthesize", "validate")
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


def _epoch(stamp: str | None) -> float | None:
    return datetime.fromisoformat(stamp).timestamp() if stamp else None


def build_report(store: StateStore, run: RunRecord, records: list[StepRecord]) -> dict[str, Any]:
    """The report document of a run, from its state record and its steps' artifacts."""
    steps = _with_paths(store.home, records)
    rows = [
        {
            "position": s.position,
            "skill": s.skill,
            "step": s.step,
            "status": s.status,
            "cache": "hit" if s.status == "cached" else "miss",
            "seconds": round(s.seconds or 0.0, 3),
            "key": s.artifact_key,
            "metrics": s.metrics,
        }
        for s in records
    ]
    metrics = run.evaluation or {}
    started = _epoch(run.started_at) or 0.0
    finished = _epoch(run.finished_at) or started
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.id,
        "repo": run.repo_path,
        "repo_name": run.repo_name,
        "commit": run.commit_sha,
        "playbook": run.playbook,
        "status": str(run.status),
        "started": started,
        "finished": finished,
        "seconds": run.seconds if run.seconds is not None else round(finished - started, 3),
        "decision": run.gate.model_dump() if run.gate else None,
        "promoted_path": run.promoted_path,
        "note": run.note,
        "warnings": list(run.warnings),
        "baseline_kind": metrics.get("baseline_kind"),
        "challenger": metrics.get("challenger"),
        "baseline": metrics.get("baseline"),
        "baseline_note": metrics.get("baseline_note"),
        "difference_ci": metrics.get("difference_ci"),
        "gate_inputs": run.gate_inputs.model_dump() if run.gate_inputs else None,
        "steps": rows,
        "all_cached": bool(rows) and all(s["cache"] == "hit" for s in rows),
        "examples": _examples(steps),
        "probe": metrics.get("probe"),
        "probe_examples": _probe_examples(steps),
        "answers": metrics.get("answers"),
        "answer_examples": _answer_examples(steps),
        "loss_curve": _loss_curve(steps),
        "card": _card(steps),
        "override": run.override.model_dump() if run.override else None,
        "ollama": _placement(store, run),
    }


def _placement(store: StateStore, run: RunRecord) -> dict[str, Any] | None:
    """Where the run's model was published beyond the models dir (an Ollama tag), if it was."""
    for model in store.registry.models(run.repo_id):
        if model.run_id == run.id and model.placement is not None:
            return model.placement.record()
    return None


def _probe_examples(steps: list[_Step], limit: int = 5) -> list[dict[str, Any]]:
    """A few probe questions, one per kind, with both models' open-book answers."""
    eval_dir = _step_dir(steps, "evaluate")
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


def report_of(store: StateStore, run_id: str | None) -> dict[str, Any]:
    """The report document of a run (the latest one when run_id is None), from the state."""
    if run_id is None:
        runs = store.runs.recent(limit=1)
        if not runs:
            raise StateError(f"{store.home}: no runs yet (try `guardian run-once REPO`)")
        run_id = runs[0].id
    return build_report(store, store.runs.require(run_id), store.runs.steps(run_id))


def _answer_examples(steps: list[_Step], limit: int = 5) -> list[dict[str, Any]]:
    """One answer-quality question per kind with both models' open-book answers and marks."""
    eval_dir = _step_dir(steps, "evaluate")
    rows_file = eval_dir / "answer_items.jsonl" if eval_dir else None
    if rows_file is None or not rows_file.is_file():
        return []
    picked: dict[str, dict[str, Any]] = {}
    for line in rows_file.read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") in picked:
            continue
        picked[row["kind"]] = {"kind": row["kind"], "question": row.get("question")}
        for role in ("challenger", "baseline"):
            picked[row["kind"]][f"{role}_answer"] = row.get(f"{role}_open_answer")
            score = row.get(f"{role}_open_score") or {}
            picked[row["kind"]][f"{role}_score"] = score.get("score")
    return list(picked.values())[:limit]


def write_report(store: StateStore, run_id: str) -> Path:
    """Render a run's record as report.json, report.md and report.html; returns the dir."""
    rep = report_of(store, run_id)
    out = reports_dir(store.home) / run_id
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
