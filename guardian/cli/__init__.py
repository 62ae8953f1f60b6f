"""The `guardian` command line: thin commands over the library (no torch import at start-up)."""

from __future__ import annotations

from guardian.cli import ask, models, run, steps
from guardian.cli.app import app

__all__ = ["app", "ask", "main", "models", "run", "steps"]


def main() -> None:
    """Console-script entry point."""
    app()
