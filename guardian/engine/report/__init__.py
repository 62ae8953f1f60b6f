"""Run reports: report.json, report.md and report.html, views of a run's record in the state."""

from guardian.engine.report.document import (
    build_report,
    render,
    report_of,
    reports_dir,
    write_report,
)
from guardian.engine.report.html import render_html
from guardian.engine.report.markdown import render_markdown

__all__ = [
    "build_report",
    "render",
    "render_html",
    "render_markdown",
    "report_of",
    "reports_dir",
    "write_report",
]
