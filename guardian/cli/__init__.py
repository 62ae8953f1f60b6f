"""The `guardian` command line: thin commands over the library (no torch import at start-up)."""

from __future__ import annotations

from guardian.cli import ask, daemon, hooks, models, run, service, steps
from guardian.cli.app import app

__all__ = ["app", "ask", "daemon", "hooks", "main", "models", "run", "service", "steps"]


def main() -> None:
    """Console-script entry point."""
    app()
