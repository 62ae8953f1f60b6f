"""A real headless browser for tests: Debian's chromium driven by Playwright.

Playwright's own browser download does not work on these machines, so it launches the
system `chromium`, which the test set-up installs from Debian's packages when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system chromium, installed with apt-get first if this machine lacks it."""
    for name in CANDIDATES:
        if found := shutil.which(name):
            return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
            check=True,
            env=env,
        )
        for name in CANDIDATES:
            if found := shutil.which(name):
                return found
    raise RuntimeError(
        "no chromium: install Debian's `chromium` package (apt-get install chromium)"
    )


@contextmanager
def open_page(html_file: Path) -> Iterator[tuple[Any, list[str]]]:
    """A loaded page of `html_file`, and the list that collects its console errors."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: (
                    problems.append(f"console {msg.type}: {msg.text}")
                    if msg.type in ("error", "warning")
                    else None
                ),
            )
            page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
            page.goto(html_file.resolve().as_uri(), wait_until="load")
            yield page, problems
        finally:
            browser.close()
