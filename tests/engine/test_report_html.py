"""report.html: rendered from a real run, checked in a real headless browser (Debian's chromium)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardian.engine.report.html import render_html
from tests.browser import open_page
from tests.engine.test_runner import ROOT, git, run, write_setup


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> tuple[Path, Any]:
    """One real pipeline run of the demo project on the tiny model: its report dir, outcome."""
    root = tmp_path_factory.mktemp("html")
    repo = root / "demo-repo"
    shutil.copytree(ROOT / "examples" / "demo-project", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "init")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GUARDIAN_HOME", str(root / "home"))
        outcome = run(write_setup(root, tiny_base), repo)
    return outcome.report_dir, outcome


def _guardian(report_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI against the fixture run's state dir and config."""
    root = report_dir.parents[2]
    env = {**os.environ, "GUARDIAN_HOME": str(root / "home")}
    return subprocess.run(
        [sys.executable, "-m", "guardian", *args, "--config", str(root / "config.yaml")],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip


def test_report_html_is_written_self_contained_and_decision_first(
    real_report: tuple[Path, Any],
) -> None:
    report_dir, outcome = real_report
    page = (report_dir / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert not re.search(r"<(script|link)\b|src=['\"]http", page)  # nothing to fetch or run
    verdict = "PASS" if outcome.decision.passed else "FAIL"
    assert page.index(f"id='decision'>{verdict}<") < page.index("<h2>Gate</h2>")
    for check in outcome.decision.checks:
        assert check.detail.replace("<", "&lt;").replace(">", "&gt;") in page
    assert "<polyline" in page and "Knowledge probe" in page and "Test questions" in page


def test_every_text_is_escaped() -> None:
    rep = {
        "run_id": "20260101T000000Z-abcdef", "playbook": "p<b>", "repo": "/r", "commit": "c" * 40,
        "seconds": 1.0, "status": "succeeded", "warnings": ["<img src=x onerror=alert(1)>"],
        "decision": {"passed": False, "reasons": [], "checks": [
            {"name": "margin", "metric": "probe_open", "passed": False, "detail": "a < b"}]},
        "examples": [{"question": "<script>alert(1)</script>", "reference": "r",
                      "challenger": "c", "baseline": "b"}],
    }  # fmt: skip
    page = render_html(rep)
    assert "<script>" not in page and "<img" not in page and "p&lt;b&gt;" in page
    assert "a &lt; b" in page and "FAIL" in page


def test_report_renders_in_chromium_without_console_errors(
    real_report: tuple[Path, Any], tmp_path: Path
) -> None:
    report_dir, outcome = real_report
    shot = tmp_path / "report.png"
    with open_page(report_dir / "report.html") as (page, problems):
        verdict = page.inner_text("#decision")
        rows = page.locator("table").first.locator("tbody tr").count()
        svg_box = page.locator("svg").first.bounding_box()
        page.screenshot(path=str(shot), full_page=True)
    assert problems == []
    assert verdict == ("PASS" if outcome.decision.passed else "FAIL")
    assert rows == len(outcome.decision.checks)
    assert svg_box is not None and svg_box["width"] > 100
    assert shot.stat().st_size > 10_000


def test_report_list_formats_and_gate_commands(real_report: tuple[Path, Any]) -> None:
    report_dir, outcome = real_report
    run_id = outcome.run_id
    listed = _guardian(report_dir, "report", "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(run_id) and " pass " in listed.stdout
    page = _guardian(report_dir, "report", run_id, "--format", "html")
    assert page.returncode == 0 and page.stdout == (report_dir / "report.html").read_text()
    bad = _guardian(report_dir, "report", run_id, "--format", "pdf")
    assert bad.returncode == 1 and "--format: expected one of md, json, html" in bad.stderr

    judged = _guardian(report_dir, "gate", run_id)
    assert judged.returncode == 0, judged.stderr
    lines = judged.stdout.splitlines()
    assert lines[0].endswith(": PASS") and len(lines) == 1 + len(outcome.decision.checks)
    # a stricter gate in the current skills.yaml: the same run would now be refused
    skills_file = report_dir.parents[2] / "skills.yaml"
    original = skills_file.read_text()
    try:
        skills = yaml.safe_load(original)
        skills["playbooks"]["demo"]["gate"]["min_margin"] = 10.0
        skills_file.write_text(yaml.safe_dump(skills))
        strict = _guardian(report_dir, "gate", run_id)
    finally:
        skills_file.write_text(original)
    assert strict.returncode == 1
    assert ": FAIL" in strict.stdout.splitlines()[0] and "needs >= 1000.0%" in strict.stdout
    assert "(the run itself was judged PASS)" in strict.stdout
