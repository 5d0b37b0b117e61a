"""The one systemd notifier (sdnotify): READY, STATUS, STOPPING and WATCHDOG; a silent no-op outside systemd.

WATCHDOG=1 is proof of life, so a service sends it only from its own work loop after real progress (a
read, a pass, a served request) — never from a side timer, which would keep a hung service alive.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import sdnotify


def under_systemd(environ: Mapping[str, str]) -> bool:
    """True when systemd started the process (stay attached, keep stderr for journald)."""
    return bool(environ.get("INVOCATION_ID") or environ.get("NOTIFY_SOCKET"))


class _Sender(sdnotify.SystemdNotifier):
    """sdnotify's sender, connected to the address the entry point was given (not re-read from os.environ)."""

    def __init__(self, address: str) -> None:
        self.debug = False  # sdnotify: a failed send is ignored, never raised into the work loop
        self.socket: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.socket.connect("\0" + address[1:] if address.startswith("@") else address)
        except OSError:
            self.socket.close()
            self.socket = None


class Notifier:
    """Talks to systemd when the service runs under it (NOTIFY_SOCKET given), otherwise does nothing."""

    def __init__(self, address: str | None, watchdog_usec: str | None = None) -> None:
        self._n = _Sender(address) if address else None
        # systemd's WatchdogSec as the service sees it (WATCHDOG_USEC), so a loop can ping often enough.
        usec = int(watchdog_usec) if watchdog_usec and watchdog_usec.isdigit() else 0
        self.watchdog_interval: float | None = usec / 1e6 if usec > 0 else None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier:
        """Build from a service's environment (at its entry point)."""
        return cls(environ.get("NOTIFY_SOCKET"), environ.get("WATCHDOG_USEC"))

    @classmethod
    def disabled(cls) -> Notifier:
        """One that sends nothing (tests, library use)."""
        return cls(None)

    def _send(self, text: str) -> None:
        if self._n is not None:
            self._n.notify(text)

    def ready(self) -> None:
        """Tell systemd start-up is complete."""
        self._send("READY=1")

    def watchdog(self) -> None:
        """Tell systemd the work loop made progress (call only from that loop)."""
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """Show a one-line status in `systemctl status`."""
        self._send(f"STATUS={text}")

    def stopping(self) -> None:
        """Tell systemd the service is shutting down."""
        self._send("STOPPING=1")

    def close(self) -> None:
        """Close the socket (at exit; later messages are dropped)."""
        if self._n is not None and self._n.socket is not None:
            self._n.socket.close()
        self._n = None
