"""Screenshot a run's report.html in headless chromium (Debian's `chromium`, via Playwright).

    python scripts/report_screenshot.py [RUN_ID | REPORT_DIR | report.html] [--out FILE.png]

Without an argument it takes the latest run's report under $GUARDIAN_HOME (or the default
state dir). Needs `pip install playwright` and the system `chromium` package; Playwright's
own browser download is not used.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _report_file(target: str | None) -> Path:
    """The report.html a target names: a file, a report dir, a run id, or the latest run."""
    if target and Path(target).is_file():
        return Path(target)
    if target and (Path(target) / "report.html").is_file():
        return Path(target) / "report.html"
    from guardian.config.settings import load_config
    from guardian.engine.report.document import reports_dir
    from guardian.store.state import StateStore

    home = load_config(None).home
    if target is None:
        with StateStore(home) as store:
            runs = store.runs.recent(limit=1)
        if not runs:
            raise SystemExit(f"{home}: no runs yet")
        target = str(runs[0]["id"])
    path = reports_dir(home) / target / "report.html"
    if not path.is_file():
        raise SystemExit(f"{path}: no report.html (run `guardian report {target} --format html`)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", default=None)
    parser.add_argument("--out", type=Path, default=Path("report.png"))
    args = parser.parse_args()
    page_file = _report_file(args.target)
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(page_file.resolve().as_uri(), wait_until="load")
        page.screenshot(path=str(args.out), full_page=True)
        decision = page.inner_text("#decision")
        browser.close()
    print(f"{args.out}: screenshot of {page_file} (decision {decision}, errors {len(errors)})")


if __name__ == "__main__":
    main()
