"""The typer app, its consoles and shared options, and the one-line error handling of commands."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from guardian.errors import ConfigError, GuardianError, Interrupted, StateError

app = typer.Typer(
    name="guardian",
    help="Repo Guardian: keep a small local model fluent in your code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="config.yaml (default: ./config.yaml)")
]
PlaybookOpt = Annotated[str | None, typer.Option("--playbook", "-p", help="playbook name")]


def _fail(exc: GuardianError) -> None:
    problems = exc.problems if isinstance(exc, ConfigError) and exc.problems else [str(exc)]
    for line in problems:
        err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def handled(fn: F) -> F:
    """Turn GuardianErrors into one line per problem on stderr and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import sqlite3

        from pydantic import ValidationError

        from guardian.core.yamlfile import config_error

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm_exits)
        try:
            return fn(*args, **kwargs)
        except GuardianError as exc:
            _fail(exc)
        except ValidationError as exc:
            _fail(config_error("options", exc))
        except KeyboardInterrupt:
            _fail(Interrupted("interrupted; nothing half-written was kept"))
        except sqlite3.DatabaseError as exc:
            _fail(StateError(f"state database: {exc} (run `guardian doctor`)"))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(GuardianError(f"{where}{exc.strerror or exc}"))

    return wrapper  # type: ignore[return-value]


def line(text: str) -> None:
    """One plain line on stdout (no wrapping: scripts parse these)."""
    sys.stdout.write(text + "\n")


def sigterm_exits(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: exit like an interrupt, so cleanup and run records still happen."""
    raise SystemExit(128 + signum)


def setup(config_path: Path | None) -> Any:
    """Load the config (flag, env, ./config.yaml or defaults) and configure logging from it."""
    from guardian import log
    from guardian.config.settings import load_config

    cfg = load_config(config_path)
    log.configure(cfg.log.level, cfg.log.format)
    return cfg


def skills_path_of(cfg: Any) -> Path:
    """The skills file a config means: the one it names, or the packaged one when the config
    is the built-in default and names none that exists."""
    from guardian.engine.check import skills_path_of as engine_skills_path_of

    return engine_skills_path_of(cfg)


def skills_of(cfg: Any) -> Any:
    """The loaded, step-checked skills file of a config."""
    from guardian.steps import load_skills

    return load_skills(skills_path_of(cfg))
