"""Fault injection for the reliability tests: SIGKILL at a named point when asked to.

`$GUARDIAN_FAULT=<point>:<name>` kills the process the first time that point is reached. The
runner names `start:<skill>` (step recorded, nothing computed), `computed:<skill>` (outputs in
the temp dir, nothing committed) and `committed:<skill>` (artifact committed, step not yet
recorded as finished); each step names `during:<step>` once part of its output is written.
Unset (always, outside tests), it costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "GUARDIAN_FAULT"


def fault_point(point: str, name: str) -> None:
    """SIGKILL this process here if $GUARDIAN_FAULT is `point:name`."""
    if os.environ.get(FAULT_ENV) == f"{point}:{name}":
        os.kill(os.getpid(), signal.SIGKILL)
