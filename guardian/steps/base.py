"""The step contract: every step is `run(ctx, params) -> StepResult`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from guardian.core.schema import StrictModel
from guardian.errors import StepError

if TYPE_CHECKING:
    from guardian.store.state import StateStore


class StepParams(StrictModel):
    """Base of every step's params: unknown keys are errors, so typos never pass silently."""


@dataclass
class StepContext:
    """What a step may see: the repo, the run, the state store and its input artifact dirs.

    `out_dir` is a fresh temp dir; the runner renames it into the artifact store only after
    the step returns, so a killed step leaves nothing half-written.
    """

    repo: Path
    out_dir: Path
    home: Path
    run_id: str = "adhoc"
    repo_name: str = ""
    commit: str = ""
    inputs: dict[str, Path] = field(default_factory=dict)
    store: StateStore | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def input(self, kind: str) -> Path:
        """The artifact dir of the named input kind; a missing one is a wiring bug."""
        try:
            return self.inputs[kind]
        except KeyError:
            raise StepError(f"step input '{kind}' was not provided") from None

    def input_file(self, kind: str, name: str) -> Path:
        """A file of an input: the user's own file when a command passed one (`files[kind]`),
        so errors name it, else `name` inside the input's artifact dir."""
        return self.files[kind] if kind in self.files else self.input(kind) / name


@dataclass
class StepResult:
    """Files the step wrote (relative to out_dir) and a small metrics dict for reports.

    `discard` names scratch files (a training checkpoint) to delete once the artifact is
    committed, never before: a kill in between must still find them to resume from.
    """

    outputs: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    discard: list[Path] = field(default_factory=list)


P = TypeVar("P", bound=StepParams)


@dataclass(frozen=True)
class StepSpec(Generic[P]):
    """A registered step: its function, params model, the artifact kinds it reads and writes.

    `version` is part of every cache key: bump it when the step's output format or logic
    changes, so stale artifacts are not reused. `uses_repo` keys the step on the repo's HEAD
    commit as well as on its inputs. `extra_key` adds material the params only point at (the
    contents of a templates dir, the base model's fingerprint), given the params and the state
    dir, so changing those invalidates the cache too. `unkeyed` names params that do not
    change the output (parallelism) and stay out of the key; `libraries` names the installed
    distributions whose versions shape the output, which join the key.
    """

    name: str
    fn: Callable[[StepContext, P], StepResult]
    params: type[P]
    needs: tuple[str, ...]
    provides: str
    version: str = "1"
    uses_repo: bool = False
    optional_needs: tuple[str, ...] = ()
    extra_key: Callable[[P, Path], Any] | None = None
    unkeyed: frozenset[str] = frozenset()
    libraries: tuple[str, ...] = ()
