"""The pipeline runner: run a playbook's skills in order with caching, then gate and promote."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from guardian.artifacts import ArtifactStore, cache_key, dir_digest
from guardian.config import GuardianConfig
from guardian.errors import StateError, StepError
from guardian.gate import Decision, decide
from guardian.skills import Playbook, SkillDef, SkillsFile
from guardian.state import RunStatus, StateStore, StepStatus
from guardian.steps import StepContext, StepParams, StepSpec, get_step

log = structlog.get_logger(__name__)

# artifact kind -> (artifact dir, content digest, cache key) of the latest step providing it
Produced = dict[str, tuple[Path, str, str]]


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
    note: str = ""
    report_dir: Path | None = None
    started: float = 0.0
    finished: float = 0.0


def resolve_params(spec: StepSpec, skill: SkillDef, config: GuardianConfig) -> StepParams:  # type: ignore[type-arg]
    """Validate a skill's params for its step, filling the config's base model by default."""
    raw = dict(skill.params)
    if "base" in spec.params.model_fields and "base" not in raw:
        raw["base"] = config.base_model
    return spec.params.model_validate(raw)


def step_key(
    spec: StepSpec,  # type: ignore[type-arg]
    params: StepParams,
    input_digests: dict[str, str],
    repo_rev: str | None,
    home: Path,
) -> str:
    """The cache key of a step: name, version, params, input digests, and HEAD commit if used."""
    return cache_key(
        {
            "step": spec.name,
            "version": spec.version,
            "params": params.model_dump(mode="json"),
            "inputs": input_digests,
            "repo_rev": repo_rev if spec.uses_repo else None,
            "extra": spec.extra_key(params, home) if spec.extra_key else None,
        }
    )


@contextmanager
def repo_lock(home: Path, repo: Path) -> Iterator[None]:
    """One run per repo at a time, across processes; the OS drops the lock if we die."""
    locks = home / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(str(repo.resolve()).encode()).hexdigest()[:16]
    path = locks / f"{name}.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise StateError(f"{repo}: another run is in progress (pid {holder})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def model_skill(skills: SkillsFile, playbook: Playbook) -> str | None:
    """The playbook's skill that produces a model (its champion is tracked per this name)."""
    for name in playbook.skills:
        if get_step(skills.skills[name].step).provides == "model":
            return name
    return None


def _fingerprint(model_dir: Path) -> str | None:
    try:
        return str(json.loads((model_dir / "base.json").read_text())["fingerprint"])
    except (OSError, ValueError, KeyError):
        return None


def comparable_champion(champion_dir: Path, challenger_dir: Path) -> bool:
    """Whether the champion can be the baseline: on disk and trained on the same base model.

    Perplexities on different bases (tokenizers) are not comparable, so after a base change
    the challenger is judged against its own untrained base instead.
    """
    if not champion_dir.is_dir():
        log.warning("champion_missing_on_disk", path=str(champion_dir))
        return False
    if _fingerprint(champion_dir) != _fingerprint(challenger_dir):
        log.warning("champion_on_other_base", path=str(champion_dir))
        return False
    return True


def head_commit(repo: Path) -> str:
    """HEAD's commit sha (after head_tree_sha has vetted the repo)."""
    from guardian.steps.mine import open_repo

    with open_repo(repo) as handle:
        return str(handle.head.commit.hexsha)


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
        from guardian.report import write_report
        from guardian.steps.mine import head_tree_sha

        repo = repo.expanduser().resolve()
        name = playbook_name or self.config.default_playbook
        playbook = self.skills.playbook(name)
        head_tree_sha(repo)  # raises a clear RepoError for a missing, non-git or empty repo
        commit = head_commit(repo)
        repo_name = repo.name
        with repo_lock(self.home, repo):
            self.store.mark_stale_runs()
            swept = self.artifacts.sweep()
            if swept:
                log.info("swept_stale_temp_dirs", count=swept)
            repo_id = self.store.ensure_repo(repo, repo_name)
            run_id = self.store.start_run(repo_id, name, commit)
            outcome = RunOutcome(
                run_id=run_id,
                repo=repo,
                repo_name=repo_name,
                commit=commit,
                playbook=name,
                status=RunStatus.RUNNING,
                started=time.time(),
            )
            structlog.contextvars.bind_contextvars(run_id=run_id)
            try:
                produced = self._run_steps(outcome, playbook, repo_id)
                self._gate_and_promote(outcome, playbook, repo_id, produced)
                outcome.status = RunStatus.SUCCEEDED
            except BaseException as exc:
                outcome.status = (
                    RunStatus.INTERRUPTED
                    if isinstance(exc, KeyboardInterrupt | SystemExit)
                    else RunStatus.FAILED
                )
                outcome.finished = time.time()
                outcome.note = f"{type(exc).__name__}: {exc}"
                report_dir = write_report(self.home, outcome)
                self.store.finish_run(run_id, outcome.status, None, report_dir, outcome.note)
                raise
            finally:
                structlog.contextvars.unbind_contextvars("run_id")
            outcome.finished = time.time()
            outcome.report_dir = write_report(self.home, outcome)
            verdict = None
            if outcome.decision is not None:
                verdict = "pass" if outcome.decision.passed else "fail"
            self.store.finish_run(run_id, RunStatus.SUCCEEDED, verdict, outcome.report_dir)
            return outcome

    def _run_steps(self, out: RunOutcome, playbook: Playbook, repo_id: int) -> Produced:
        """Run or reuse each skill; returns what was produced, by artifact kind."""
        produced: Produced = {}
        train_skill = model_skill(self.skills, playbook)
        for position, skill_name in enumerate(playbook.skills):
            skill = self.skills.skills[skill_name]
            spec = get_step(skill.step)
            params = resolve_params(spec, skill, self.config)
            inputs = {kind: produced[kind][0] for kind in spec.needs}
            digests = {kind: produced[kind][1] for kind in spec.needs}
            if "baseline" in spec.optional_needs and train_skill and "model" in produced:
                champ = self.store.champion(repo_id, train_skill)
                if champ and champ["artifact_key"] != produced["model"][2]:
                    champ_path = Path(champ["path"])
                    if comparable_champion(champ_path, produced["model"][0]):
                        inputs["baseline"] = champ_path
                        digests["baseline"] = dir_digest(champ_path)
            key = step_key(spec, params, digests, out.commit, self.home)
            step_row = self.store.start_step(out.run_id, position, skill_name, spec.name, key)
            t0 = time.time()
            if self.artifacts.exists(key):
                meta = self.artifacts.meta(key)
                status, metrics = StepStatus.CACHED, dict(meta.get("metrics", {}))
                path = self.artifacts.path(key)
                log.info("step_cached", skill=skill_name, step=spec.name, key=key[:12])
            else:
                log.info("step_start", skill=skill_name, step=spec.name, key=key[:12])
                tmp = self.artifacts.begin(key)
                ctx = StepContext(
                    repo=out.repo,
                    out_dir=tmp,
                    home=self.home,
                    run_id=out.run_id,
                    repo_name=out.repo_name,
                    commit=out.commit,
                    inputs=inputs,
                    store=self.store,
                )
                try:
                    result = spec.fn(ctx, params)
                except BaseException as exc:
                    self.artifacts.abandon(tmp)
                    status = (
                        StepStatus.INTERRUPTED
                        if isinstance(exc, KeyboardInterrupt | SystemExit)
                        else StepStatus.FAILED
                    )
                    self.store.finish_step(step_row, status, time.time() - t0, error=str(exc))
                    out.steps.append(
                        StepOutcome(
                            position, skill_name, spec.name, key, status, time.time() - t0, {}
                        )
                    )
                    raise
                metrics = dict(result.metrics)
                meta = {
                    "step": spec.name,
                    "skill": skill_name,
                    "kind": spec.provides,
                    "run_id": out.run_id,
                    "params": params.model_dump(mode="json"),
                    "inputs": digests,
                    "outputs": result.outputs,
                    "metrics": metrics,
                }
                path = self.artifacts.commit(key, tmp, meta)
                meta = self.artifacts.meta(key)
                self.store.record_artifact(
                    key,
                    spec.name,
                    spec.provides,
                    path,
                    meta["digest"],
                    meta["size_bytes"],
                    out.run_id,
                )
                status = StepStatus.RAN
                log.info(
                    "step_done",
                    skill=skill_name,
                    step=spec.name,
                    seconds=round(time.time() - t0, 2),
                )
            seconds = time.time() - t0
            self.store.finish_step(step_row, status, seconds, metrics)
            out.steps.append(
                StepOutcome(position, skill_name, spec.name, key, status, seconds, metrics, path)
            )
            produced[spec.provides] = (path, meta["digest"], key)
        if "metrics" in produced:
            metrics_file = produced["metrics"][0] / "metrics.json"
            out.metrics = json.loads(metrics_file.read_text())
        return produced

    def _gate_and_promote(
        self, out: RunOutcome, playbook: Playbook, repo_id: int, produced: Produced
    ) -> None:
        from guardian.steps.promote import promote_local

        train_skill = model_skill(self.skills, playbook)
        if out.metrics is None:
            out.note = "the playbook has no evaluate step: no gate decision, nothing promoted"
            return
        champ = self.store.champion(repo_id, train_skill) if train_skill else None
        model_key = produced["model"][2] if "model" in produced else None
        if champ and model_key and champ["artifact_key"] == model_key:
            out.note = f"this model is already the champion (promoted by run {champ['run_id']})"
            out.decision = Decision(
                passed=True,
                reasons=["PASS challenger is identical to the current champion; nothing to do"],
                baseline_kind="champion",
            )
            out.promoted_path = Path(champ["path"])
            return
        kind = str(out.metrics.get("baseline_kind", "base"))
        out.decision = decide(
            out.metrics["challenger"], out.metrics.get("baseline"), playbook.gate, kind
        )
        if not out.decision.passed:
            out.note = "gate failed: the champion stays in service"
            return
        if not playbook.promote or self.config.promote.target == "none":
            out.note = "gate passed; promotion is disabled for this playbook"
            return
        if model_key is None or train_skill is None:
            raise StepError("gate passed but the playbook produced no model to promote")
        out.promoted_path = promote_local(
            store=self.store,
            models_dir=self.config.models_dir,
            repo_id=repo_id,
            repo_name=out.repo_name,
            skill=train_skill,
            run_id=out.run_id,
            artifact_key=model_key,
            model_dir=produced["model"][0],
            metrics=out.metrics["challenger"],
        )
        out.note = f"gate passed: promoted to {out.promoted_path}"
