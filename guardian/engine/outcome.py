"""What a run produced, step by step: the record the runner fills and the reports read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardian.store.records import Decision, GateInputs, RunStatus, StepStatus


@dataclass
class StepOutcome:
    """What happened to one skill of a run."""

    position: int
    skill: str
    step: str
    key: str
    status: StepStatus
    seconds: float
    metrics: dict[str, Any]
    path: Path | None = None


@dataclass
class RunOutcome:
    """The result of one playbook run: steps, gate decision, promotion, report location."""

    run_id: str
    repo: Path
    repo_name: str
    commit: str
    playbook: str
    status: RunStatus
    steps: list[StepOutcome] = field(default_factory=list)
    decision: Decision | None = None
    metrics: dict[str, Any] | None = None
    promoted_path: Path | None = None
    talk: str | None = None  # the command that asks the model in service something
    note: str = ""
    warnings: list[str] = field(default_factory=list)
    # what the gate compared against: baseline metrics, their kind, difference intervals
    gate_inputs: GateInputs | None = None
    report_dir: Path | None = None
    started: float = 0.0
    finished: float = 0.0
