"""Run reports: report.json (the document), report.md and report.html (its views), per run."""

from guardian.engine.report.document import (
    build_report,
    load_report,
    render,
    reports_dir,
    write_report,
)
from guardian.engine.report.html import render_html
from guardian.engine.report.markdown import render_markdown

__all__ = [
    "build_report",
    "load_report",
    "render",
    "render_html",
    "render_markdown",
    "reports_dir",
    "write_report",
]
