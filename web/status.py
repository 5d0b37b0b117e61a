"""The status panel's data: devices from the stream, service health from .status files, disk use."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from kernel.status import (
    UPLOADER_NAME,
    ReaderStatus,
    UploaderStatus,
    read_statuses,
    reader_statuses,
    uploader_status,
)
from web.hub import Hub

log = logging.getLogger(__name__)

# A device whose last status message is older than this is shown as "no news" rather than connected.
STALE_AFTER = 5.0
HEALTH = "health"


def disk_use(path: Path) -> dict[str, Any] | None:
    """Total/used/free bytes of the file system holding ``path`` (None when it does not exist)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return {
        "path": str(path),
        "total": usage.total,
        "used": usage.used,
        "free": usage.free,
        "percent": round(100.0 * usage.used / usage.total, 1) if usage.total else None,
    }


def device_summary(hub: Hub, files: dict[str, dict[str, Any]], now: float) -> dict[str, dict[str, Any]]:
    """Per device: connected or not, rate, counters, from the latest status message or the reader's file."""
    out: dict[str, dict[str, Any]] = {}
    mono = hub.clock()
    for name, state in hub.devices.items():
        status = dict(state.status)
        age = mono - state.status_at if state.status_at else None
        fresh = age is not None and age <= STALE_AFTER
        out[name] = {
            **status,
            "connected": bool(ReaderStatus.from_dict(status).connected) and fresh and state.ingest_open > 0,
            "reader_online": state.ingest_open > 0,
            "status_age": round(age, 1) if age is not None else None,
            "frame_age": round(mono - state.last_frame_at, 1) if state.last_frame_at else None,
            "source": "stream",
        }
    for name, status in reader_statuses(files).items():
        if name in out and out[name]["reader_online"]:
            continue
        written = status.time
        age = now - written if isinstance(written, (int, float)) and written else None
        fresh = age is not None and age <= STALE_AFTER
        out[name] = {
            **status.to_dict(),
            "connected": bool(status.connected) and fresh,
            "reader_online": fresh,
            "status_age": round(age, 1) if age is not None else None,
            "frame_age": None,
            "source": "file",
        }
    return out


def alarms(uploader: UploaderStatus | None, devices: dict[str, dict[str, Any]]) -> list[str]:
    """Lines for the alarm banner: quota alarm, upload error, disk errors."""
    lines = []
    if uploader:
        quota = uploader.quota
        if quota is not None and quota.alarm:
            lines.append(str(quota.message or "storage quota alarm"))
        if uploader.error:
            lines.append(f"uploader: {uploader.error}")
    for name, dev in devices.items():
        disk_error = ReaderStatus.from_dict(dev).disk_error
        if disk_error:
            lines.append(f"{name}: {disk_error}")
    return lines


def snapshot(hub: Hub, data_dir: Path) -> dict[str, Any]:
    """Build the health message sent to viewers and served at /api/status."""
    now = time.time()
    files = read_statuses(data_dir)
    devices = device_summary(hub, files, now)
    return {
        "type": HEALTH,
        "time": now,
        "devices": devices,
        "services": files,
        "uploader": files.get(UPLOADER_NAME),
        "disk": disk_use(data_dir),
        "alarms": alarms(uploader_status(files), devices),
        "web": hub.stats(),
    }


def snapshot_text(hub: Hub, data_dir: Path) -> str:
    """The health snapshot as a compact JSON text."""
    return json.dumps(snapshot(hub, data_dir), separators=(",", ":"), default=str)
