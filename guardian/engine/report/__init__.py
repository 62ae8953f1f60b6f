"""Run reports: report.json (the document) and report.md (its human view), per run."""

from guardian.engine.report.document import build_report, load_report, reports_dir, write_report
from guardian.engine.report.markdown import render_markdown

__all__ = ["build_report", "load_report", "render_markdown", "reports_dir", "write_report"]
