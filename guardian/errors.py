"""Typed errors. The CLI turns each into one clear line and a non-zero exit code."""

from __future__ import annotations


class GuardianError(Exception):
    """Base of every error the CLI reports as one line (exit code 1 unless overridden)."""

    exit_code: int = 1


class ConfigError(GuardianError):
    """A config or skills file is missing, unreadable or invalid."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems: list[str] = problems or []


class RepoError(GuardianError):
    """The repository is not usable: not a git repo, no commits, no supported files."""


class DataError(GuardianError):
    """An input data file (chunks, samples, metrics) is malformed; names file and line."""


class StepError(GuardianError):
    """A pipeline step failed for a reason the user can act on."""


class ModelError(GuardianError):
    """A base model spec cannot be resolved locally (never falls back to a hub download)."""


class StateError(GuardianError):
    """The state store is locked, corrupt or from a newer version."""


class LockBusy(StateError):
    """A lock file is held by another live process (`holder` is its recorded pid)."""

    def __init__(self, path: object, holder: str) -> None:
        super().__init__(f"{path}: locked by pid {holder}")
        self.holder = holder


class Interrupted(GuardianError):
    """The user stopped the command (Ctrl-C); exits 130 like the shell expects."""

    exit_code = 130


class TargetUnavailable(GuardianError):
    """A promotion target (Ollama) could not be reached or refused the model: the run's
    promotion waits (`promotion_pending`) and a later `guardian promote` retries it."""

    exit_code = 3
