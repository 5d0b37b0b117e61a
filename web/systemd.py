"""systemd notification for sensor-web: READY=1 once listening, WATCHDOG=1 from the serving event loop."""

from __future__ import annotations

import logging
import os

import sdnotify

log = logging.getLogger(__name__)


def ready() -> None:
    """Tell systemd we are up and start watchdog pings if it asked for them."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return
    notifier = sdnotify.SystemdNotifier()
    notifier.notify("READY=1")
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        usec = 0
    if usec > 0:
        _schedule_watchdog(notifier, usec / 2e6)


def _schedule_watchdog(notifier: sdnotify.SystemdNotifier, period: float) -> None:
    # The ping runs on the reactor that serves every request and websocket: a blocked loop stops it.
    from twisted.internet import reactor

    def ping() -> None:
        notifier.notify("WATCHDOG=1")
        reactor.callLater(period, ping)

    reactor.callLater(period, ping)
