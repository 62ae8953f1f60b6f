"""Waiting in tests: poll a condition with a deadline (a sleep is never an assertion)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(cond: Callable[[], Any], what: str, seconds: float) -> Any:
    """Poll `cond` every 0.1 s; return its first truthy value, or fail naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
