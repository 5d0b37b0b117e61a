"""Reporting outwards: systemd notifications (sd_notify) and the status file the dashboard reads."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import sdnotify

from reader.format import read_statuses, write_status

log = logging.getLogger(__name__)

STATUS_NAME = "uploader"


def under_systemd() -> bool:
    """True when started by systemd (stay attached, keep stderr for journald)."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("NOTIFY_SOCKET"))


class Notifier:
    """sd_notify messages; a no-op outside systemd."""

    def __init__(self) -> None:
        self._sd = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        usec = os.environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval = int(usec) / 1e6 if usec.isdigit() else None

    def _send(self, text: str) -> None:
        """Send one message (best effort)."""
        if self._sd is not None:
            self._sd.notify(text)

    def ready(self) -> None:
        """READY=1 after start-up."""
        self._send("READY=1")

    def watchdog(self) -> None:
        """WATCHDOG=1: only from the work loop, after a completed iteration."""
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """STATUS= line shown by systemctl status."""
        self._send(f"STATUS={text}")

    def stopping(self) -> None:
        """STOPPING=1 when shutting down."""
        self._send("STOPPING=1")


def publish_status(data_dir: Any, status: dict[str, Any]) -> None:
    """Write .status/uploader.json, merging with what is there (cleanup-only runs update just the quota)."""
    current = read_statuses(data_dir).get(STATUS_NAME, {})
    current.update(status)
    current["updated"] = time.time()
    current["pid"] = os.getpid()
    try:
        write_status(data_dir, STATUS_NAME, current)
    except OSError as err:  # a full disk must not stop the uploader that frees it
        log.warning("cannot write the status file: %s", err)


def status_line(state: str, backlog_batches: int, backlog_bytes: int, last_upload: float | None) -> str:
    """The STATUS= text: backlog count/bytes and last upload time."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(last_upload)) + "Z" if last_upload else "never"
    return f"{state}: backlog {backlog_batches} batches ({backlog_bytes / 1e6:.1f} MB), last upload {when}"
