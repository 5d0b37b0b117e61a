"""systemd notifications (READY, WATCHDOG, STATUS) through sdnotify; a silent no-op outside systemd."""

from __future__ import annotations

import sdnotify


class Notifier:
    """Talks to systemd when the service runs under it (NOTIFY_SOCKET set), otherwise does nothing."""

    def __init__(self, enabled: bool, watchdog_usec: str | None = None) -> None:
        self._n = sdnotify.SystemdNotifier() if enabled else None
        # systemd's WatchdogSec as the service sees it (WATCHDOG_USEC), so a loop can ping often enough.
        self.watchdog_interval = int(watchdog_usec) / 1e6 if watchdog_usec and watchdog_usec.isdigit() else None

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> Notifier:
        """Build from a service's environment (at its entry point)."""
        return cls(bool(environ.get("NOTIFY_SOCKET")), environ.get("WATCHDOG_USEC"))

    def _send(self, text: str) -> None:
        if self._n is not None:
            self._n.notify(text)

    def ready(self) -> None:
        """Tell systemd start-up is complete."""
        self._send("READY=1")

    def watchdog(self) -> None:
        """Tell systemd the work loop made progress."""
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """Show a one-line status in `systemctl status`."""
        self._send(f"STATUS={text}")

    def stopping(self) -> None:
        """Tell systemd the service is shutting down."""
        self._send("STOPPING=1")
