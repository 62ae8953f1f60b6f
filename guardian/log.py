"""structlog set-up: JSON lines when stderr is not a TTY, readable console lines when it is."""

from __future__ import annotations

import logging
import sys
import warnings

import structlog


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog (and stdlib logging) once for the process."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    for noisy in ("transformers", "peft", "urllib3", "git"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
