"""systemd's notify protocol in a few lines: READY, STATUS, WATCHDOG, STOPPING datagrams to
$NOTIFY_SOCKET (an abstract socket when it starts with '@'); nothing when not under systemd."""

from __future__ import annotations

import os
import socket
import time

import structlog

log = structlog.get_logger(__name__)


def sd_notify(message: str) -> bool:
    """Send one sd_notify datagram to $NOTIFY_SOCKET (systemd); False when not under it."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("sd_notify failed", error=str(exc))
            return False
    return True


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return max(int(usec) / 2e6, 0.05)


class Watchdog:
    """Pings systemd's watchdog at half its interval, from the loop that calls `beat`."""

    def __init__(self) -> None:
        self.last = 0.0

    def beat(self) -> None:
        """Send WATCHDOG=1 if the interval has passed (nothing without a watchdog)."""
        interval = watchdog_interval()
        if interval is not None and time.monotonic() - self.last >= interval:
            sd_notify("WATCHDOG=1")
            self.last = time.monotonic()
