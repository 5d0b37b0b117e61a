"""systemd notifications (READY, WATCHDOG, STATUS) through sdnotify; a silent no-op outside systemd."""

from __future__ import annotations

import sdnotify


class Notifier:
    """Talks to systemd when the service runs under it (NOTIFY_SOCKET set), otherwise does nothing."""

    def __init__(self, enabled: bool) -> None:
        self._n = sdnotify.SystemdNotifier() if enabled else None

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
