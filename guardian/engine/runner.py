"""The pipeline runner: run a playbook's skills in order with caching, then gate and promote."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import structlog

from guardian.config.settings import GuardianConfig
from guardian.config.skills import Playbook, SkillsFile
from guardian.core.faults import fault_point
from guardian.core.fsutil import file_lock
from guardian.core.gitutil import head_commit, head_tree_sha
from guardian.engine.keys import KeyedSkill, KeyWalk, model_skill
from guardian.engine.outcome import RunOutcome, StepOutcome
from guardian.errors import LockBusy, StateError, StepError, TargetUnavailable
from guardian.evaluation.gate import Decision, decide
from guardian.evaluation.metrics import TOKENIZER_FREE
from guardian.steps import StepContext
from guardian.store.artifacts import ArtifactStore, Health
from guardian.store.records import GateInputs, RunResult, RunStatus, StepStatus
from guardian.store.state import StateStore

log = structlog.get_logger(__name__)


@contextmanager
def repo_lock(home: Path, repo: Path) -> Iterator[None]:
    """One run per repo at a time, across processes; the OS drops the lock if we die."""
    name = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:16]
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(home / "locks" / f"{name}.lock", wait=False))
        except LockBusy as busy:
            raise StateError(f"{repo}: another run is in progress (pid {busy.holder})") from None
        yield


def _interrupted(exc: BaseException) -> bool:
    return isinstance(exc, KeyboardInterrupt | SystemExit)


class Pipeline:
    """Runs playbooks for repos against one state dir."""

    def __init__(self, config: GuardianConfig, skills: SkillsFile) -> None:
        self.config = config
        self.skills = skills
        self.home = config.home
        self.home.mkdir(parents=True, exist_ok=True)
        self.store = StateStore(self.home)
        self.artifacts = ArtifactStore(self.home)

    def close(self) -> None:
        """Release the state connection."""
        self.store.close()

    def run_once(self, repo: Path, playbook_name: str | None = None) -> RunOutcome:
        """Run the playbook once for `repo`; steps whose key exists are reused, not redone."""
        repo = repo.expanduser().resolve()
        name = playbook_name or self.config.default_playbook
        playbook = self.skills.playbook(name)
        head_tree_sha(repo)  # raises a clear RepoError for a missing, non-git or empty repo
        commit = head_commit(repo)
        runs = self.store.runs
        with repo_lock(self.home, repo):
            runs.mark_stale()
            swept = self.artifacts.sweep()
            if swept:
                log.info("swept_stale_temp_dirs", count=swept)
            repo_id = self.store.db.ensure_repo(repo, repo.name)
            run_id = runs.start(repo_id, name, commit)
            outcome = RunOutcome(
                run_id=run_id,
                repo=repo,
                repo_name=repo.name,
                commit=commit,
                playbook=name,
                status=RunStatus.RUNNING,
                started=time.time(),
            )
            structlog.contextvars.bind_contextvars(run_id=run_id)
            try:
                walk = self._run_steps(outcome, playbook, repo_id)
                self._gate_and_promote(outcome, playbook, repo_id, walk)
                if outcome.status is RunStatus.RUNNING:
                    outcome.status = RunStatus.SUCCEEDED
            except BaseException as exc:
                outcome.status = RunStatus.INTERRUPTED if _interrupted(exc) else RunStatus.FAILED
                outcome.note = f"{type(exc).__name__}: {exc}"
                self._finish(outcome, error=outcome.note)
                raise
            finally:
                structlog.contextvars.unbind_contextvars("run_id")
            self._finish(outcome)
            return outcome

    def _finish(self, out: RunOutcome, error: str | None = None) -> None:
        """Record the run's result in the state, then render its report views from it."""
        from guardian.engine.report import reports_dir, write_report

        out.finished = time.time()
        result = RunResult(
            status=out.status,
            gate=out.decision,
            gate_inputs=out.gate_inputs,
            evaluation=out.metrics,
            note=out.note,
            warnings=out.warnings,
            promoted_path=str(out.promoted_path) if out.promoted_path else None,
            talk=out.talk,
            error=error,
            report_path=str(reports_dir(self.home) / out.run_id),
            seconds=round(out.finished - out.started, 3),
        )
        self.store.runs.finish(out.run_id, result)
        out.report_dir = write_report(self.store, out.run_id)

    def _run_steps(self, out: RunOutcome, playbook: Playbook, repo_id: int) -> KeyWalk:
        """Run or reuse each skill; returns the walk, which knows what each kind came from."""
        train_skill = model_skill(self.skills, playbook)
        champ = self.store.registry.champion(repo_id, train_skill) if train_skill else None
        walk = KeyWalk(self.config, self.skills, out.commit, champ)
        for position, skill_name in enumerate(playbook.skills):
            ks = walk.keyed(position, skill_name)
            step_row = self.store.runs.start_step(
                out.run_id, position, skill_name, ks.spec.name, ks.key
            )
            t0 = time.time()
            health = self.artifacts.check(ks.key)
            if health is Health.DAMAGED:
                self._quarantine(ks, out)
            if health is Health.OK:
                status = StepStatus.CACHED
                metrics = dict(self.artifacts.meta(ks.key).get("metrics", {}))
                log.info("step_cached", skill=skill_name, step=ks.spec.name, key=ks.key[:12])
            else:
                metrics = self._execute(ks, out, step_row, t0)
                status = StepStatus.RAN
            fault_point("committed", skill_name)
            path, meta = self.artifacts.path(ks.key), self.artifacts.meta(ks.key)
            seconds = time.time() - t0
            self.store.runs.finish_step(step_row, status, seconds, metrics)
            out.steps.append(
                StepOutcome(
                    position, skill_name, ks.spec.name, ks.key, status, seconds, metrics, path
                )
            )
            walk.record(ks.spec.provides, path, meta["digest"], ks.key)
        if "metrics" in walk.produced:
            metrics_file = walk.produced["metrics"][0] / "metrics.json"
            out.metrics = json.loads(metrics_file.read_text())
        return walk

    def _quarantine(self, ks: KeyedSkill, out: RunOutcome) -> None:
        """Set a damaged cached artifact aside so this run rebuilds it, and say so."""
        where = self.artifacts.quarantine(ks.key)
        message = (
            f"{ks.name}: the cached artifact {ks.key[:12]} was damaged (its files no longer "
            f"match their digest); moved it to {where} and rebuilt it"
        )
        log.warning("artifact_damaged", skill=ks.name, key=ks.key[:12], quarantined=str(where))
        out.warnings.append(message)

    def _execute(self, ks: KeyedSkill, out: RunOutcome, step_row: int, t0: float) -> dict[str, Any]:
        """Run one skill into a temp dir and commit it as the artifact of its key."""
        log.info("step_start", skill=ks.name, step=ks.spec.name, key=ks.key[:12])
        tmp = self.artifacts.begin(ks.key)
        ctx = StepContext(
            repo=out.repo,
            out_dir=tmp,
            home=self.home,
            run_id=out.run_id,
            repo_name=out.repo_name,
            commit=out.commit,
            inputs=ks.inputs,
            store=self.store,
        )
        fault_point("start", ks.name)
        try:
            result = ks.spec.fn(ctx, ks.params)
        except BaseException as exc:
            self.artifacts.abandon(tmp)
            status = StepStatus.INTERRUPTED if _interrupted(exc) else StepStatus.FAILED
            seconds = time.time() - t0
            self.store.runs.finish_step(step_row, status, seconds, error=str(exc))
            out.steps.append(
                StepOutcome(ks.position, ks.name, ks.spec.name, ks.key, status, seconds, {})
            )
            raise
        fault_point("computed", ks.name)
        metrics = dict(result.metrics)
        meta = {
            "step": ks.spec.name,
            "skill": ks.name,
            "kind": ks.spec.provides,
            "run_id": out.run_id,
            "params": ks.params.model_dump(mode="json"),
            "inputs": ks.digests,
            "outputs": result.outputs,
            "metrics": metrics,
        }
        path = self.artifacts.commit(ks.key, tmp, meta)
        for scratch in result.discard:
            scratch.unlink(missing_ok=True)
        sealed = self.artifacts.meta(ks.key)
        self.store.runs.record_artifact(
            ks.key,
            ks.spec.name,
            ks.spec.provides,
            path,
            sealed["digest"],
            sealed["size_bytes"],
            out.run_id,
        )
        log.info("step_done", skill=ks.name, step=ks.spec.name, seconds=round(time.time() - t0, 2))
        return metrics

    def _gate_and_promote(
        self, out: RunOutcome, playbook: Playbook, repo_id: int, walk: KeyWalk
    ) -> None:
        from guardian.engine.publish import Release, publish, talk_command

        train_skill = model_skill(self.skills, playbook)
        if out.metrics is None:
            out.note = "the playbook has no evaluate step: no gate decision, nothing promoted"
            return
        champ = self.store.registry.champion(repo_id, train_skill) if train_skill else None
        model = walk.produced.get("model")
        model_key = model[2] if model is not None else None
        if champ and model_key and champ.artifact_key == model_key:
            out.note = f"this model is already the champion (promoted by run {champ.run_id})"
            out.decision = Decision(
                passed=True,
                reasons=["PASS challenger is identical to the current champion; nothing to do"],
                baseline_kind="champion",
            )
            out.promoted_path = Path(champ.path)
            out.talk = talk_command(champ.placement, out.repo)
            return
        kind = str(out.metrics.get("baseline_kind", "base"))
        baseline, differences = out.metrics.get("baseline"), out.metrics.get("difference_ci")
        if out.metrics.get("baseline_note"):
            out.warnings.append(str(out.metrics["baseline_note"]))
        if champ is not None and kind == "base":  # a champion that could not be scored
            kind = "champion (recorded metrics)"
            recorded = champ.metrics
            baseline = {k: v for k, v in recorded.items() if k in TOKENIZER_FREE}
            differences = None
            out.warnings.append(
                f"the champion from run {champ.run_id} could not be scored (its files are "
                f"missing at {champ.path}): the challenger is judged against the "
                "tokenizer-free metrics recorded when it was promoted, on that run's items"
            )
        n_train = next((s.metrics.get("n_train") for s in out.steps if s.step == "train"), None)
        out.gate_inputs = GateInputs(
            baseline=baseline, baseline_kind=kind, differences=differences, train_samples=n_train
        )
        out.decision = decide(
            out.metrics["challenger"], baseline, playbook.gate, kind, differences, n_train
        )
        if not out.decision.passed:
            out.note = "gate failed: the champion stays in service"
            return
        if not playbook.promote or self.config.promote.target == "none":
            out.note = "gate passed; promotion is disabled for this playbook"
            return
        if model is None or train_skill is None:
            raise StepError("gate passed but the playbook produced no model to promote")
        release = Release(
            repo_id=repo_id,
            repo_name=out.repo_name,
            skill=train_skill,
            run_id=out.run_id,
            artifact_key=model[2],
            model_dir=model[0],
            metrics=out.metrics["challenger"],
        )
        try:
            placed = publish(self.config, self.store, self.skills, release)
        except TargetUnavailable as exc:
            out.status = RunStatus.PROMOTION_PENDING
            out.note = f"gate passed; promotion pending ({exc}): retry with guardian promote"
            log.warning("promotion_pending", reason=str(exc))
            return
        out.promoted_path = placed.path
        out.talk = placed.talk(out.repo)
        out.note = f"gate passed: promoted to {placed.where()}"
