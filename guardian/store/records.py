"""Typed records of the state file: runs with their gate outcome, their steps, and decisions.

Every reader of the state (CLI, daemon, API, reports) gets these instead of row dicts; the
report files are views rendered from them, never read back to decide anything.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunStatus(StrEnum):
    """Life cycle of a run: running, then exactly one of the terminal states."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PROMOTION_PENDING = "promotion_pending"  # gate passed; the target was unreachable


class StepStatus(StrEnum):
    """Outcome of one step in a run: reused from the cache, ran, or did not finish."""

    RUNNING = "running"
    CACHED = "cached"
    RAN = "ran"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


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


class GateInputs(BaseModel):
    """What the gate compared the challenger against, so it can be judged again later."""

    baseline: dict[str, Any] | None = None
    baseline_kind: str = "base"
    differences: dict[str, list[float]] | None = None
    train_samples: int | None = None


class Override(BaseModel):
    """Who promoted a model past a failed gate, why and when."""

    by: str
    reason: str | None
    at: str
    gate_passed: bool = False


class RunResult(BaseModel):
    """What a finished run decided and did: the fields the runner and `promote` write."""

    status: RunStatus
    gate: Decision | None = None
    gate_inputs: GateInputs | None = None
    evaluation: dict[str, Any] | None = None  # the evaluate step's metrics.json
    note: str = ""
    warnings: list[str] = Field(default_factory=list)
    promoted_path: str | None = None
    talk: str | None = None
    override: Override | None = None
    error: str | None = None
    report_path: str | None = None
    seconds: float | None = None  # wall time, measured by the process that ran it

    @property
    def verdict(self) -> str | None:
        """'pass', 'fail', or None when no gate ran."""
        if self.gate is None:
            return None
        return "pass" if self.gate.passed else "fail"


class RunRecord(RunResult):
    """One run as the state holds it: who, what, when, and its result's fields."""

    id: str
    repo_id: int
    repo_path: str
    repo_name: str
    playbook: str
    commit_sha: str | None = None
    pid: int | None = None
    started_at: str
    finished_at: str | None = None
    decision: str | None = None  # 'pass' | 'fail' | None, for listings

    @property
    def result(self) -> RunResult:
        """The result part alone (what `RunLog.finish` writes)."""
        return RunResult.model_validate(self.model_dump(include=set(RunResult.model_fields)))


class StepRecord(BaseModel):
    """One skill of a run: its step, artifact key, outcome and metrics."""

    id: int
    run_id: str
    position: int
    skill: str
    step: str
    artifact_key: str | None = None
    status: StepStatus
    seconds: float | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    started_at: str
    finished_at: str | None = None


class Placement(BaseModel):
    """Where one promotion target put a model: enough to find it again and to undo it.

    `name` is the model's dir for the local target and the model name in Ollama; `host` is
    the server holding it (empty for a local dir); `tag` the run's tag there; `digest` what
    the content must hash to; `blob` the uploaded file's digest where there is one.
    """

    model_config = ConfigDict(frozen=True)

    target: str
    host: str = ""
    name: str
    tag: str = ""
    digest: str = ""
    blob: str = ""

    def record(self) -> dict[str, Any]:
        """The JSON-ready form the model registry stores (fields left empty are left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)


class ModelStatus(StrEnum):
    """A promoted model's place in its repo+skill history."""

    CHAMPION = "champion"
    PREVIOUS = "previous"  # what a rollback goes back to
    RETIRED = "retired"


class ModelRecord(BaseModel):
    """One promoted model: whose, from which run, where its files are and how it scored."""

    id: int
    repo_id: int
    repo_name: str = ""
    skill: str
    run_id: str
    artifact_key: str
    path: str
    base: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    status: ModelStatus
    promoted_at: str
    digest: str | None = None  # of the promoted dir, for `guardian doctor`
    override: Override | None = None
    placement: Placement | None = None  # where else it was published (Ollama)


class JobStatus(StrEnum):
    """A job's life: queued, running, then done or failed (or back to queued on restart)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobKind(StrEnum):
    """What a job does: run a playbook, or retry the promotion of a finished run."""

    RUN = "run"
    PROMOTE = "promote"


class JobPayload(BaseModel):
    """Why a job exists: its triggers' reasons (stamped), how many joined, a note, a run."""

    reasons: list[str] = Field(default_factory=list)
    triggers: int = 1
    note: str | None = None
    run_id: str | None = None  # the run a promote job promotes


class JobRecord(BaseModel):
    """One row of the queue, with its repo's path and name."""

    id: str
    kind: JobKind
    repo_id: int | None = None
    repo_path: str | None = None
    repo_name: str | None = None
    playbook: str | None = None
    payload: JobPayload = Field(default_factory=JobPayload)
    status: JobStatus
    run_id: str | None = None
    error: str | None = None
    pid: int | None = None
    attempts: int = 0
    not_before: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
