"""Reporting outwards: the status file the dashboard reads and the STATUS= line (sent by kernel.notify)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from kernel.status import read_statuses, write_status

__all__ = ["STATUS_NAME", "publish_status", "status_line"]

log = logging.getLogger(__name__)

STATUS_NAME = "uploader"


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
