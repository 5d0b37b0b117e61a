"""Disk-quota cleanup: keep the data under the high watermark by deleting the oldest touched sessions.

Usage is either the data filesystem's (statvfs; default) or the bytes under the data directory against
a byte quota (``SENSOR_QUOTA_BYTES``). Above the high watermark, touched (closed and fully uploaded)
sessions are deleted oldest first (by the manifest's start time) down to the low watermark. Sessions
not yet uploaded are never deleted unless ``SENSOR_EVICT_UNUPLOADED=1`` (then closed ones go after the
touched ones, oldest first; an open session never). If the disk stays above the high watermark, the
report carries an alarm. A session is first renamed to a dot-name (invisible to every reader of the
format) and then removed, so a crash mid-delete never leaves a half session behind.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

from kernel.layout import device_dirs, evicting_leftovers, evicting_path, is_touched, session_dirs
from kernel.manifest import SessionManifest
from kernel.status import QuotaStatus
from uploader.settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class QuotaReport:
    """Outcome of one cleanup run, as published in the status file."""

    used_bytes: int
    total_bytes: int
    alarm: bool
    message: str
    evicted: tuple[str, ...] = ()

    def as_status(self) -> QuotaStatus:
        """The ``quota`` part of the uploader's status document."""
        return QuotaStatus(self.used_bytes, self.total_bytes, self.alarm, self.message)


def tree_size(path: Path) -> int:
    """Bytes allocated under a folder (files only; vanished entries are skipped)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            total += max(st.st_size, st.st_blocks * 512)
    return total


def usage(settings: Settings) -> tuple[int, int]:
    """(used, total) bytes: against the byte quota, else the data filesystem."""
    if settings.quota_bytes is not None:
        return tree_size(settings.data_dir), settings.quota_bytes
    st = os.statvfs(settings.data_dir)
    total = st.f_blocks * st.f_frsize
    return total - st.f_bfree * st.f_frsize, total


def _start_key(session_dir: Path) -> tuple[str, str]:
    """Sort key: the manifest's start time, then the path."""
    try:
        started = SessionManifest.load(session_dir).started_at or ""
    except (OSError, ValueError, TypeError):
        started = ""
    return started, str(session_dir)


def _closed(session_dir: Path) -> bool:
    """The reader finalised the session."""
    try:
        return SessionManifest.load(session_dir).closed
    except (OSError, ValueError, TypeError):
        return False


def remove_session(session_dir: Path) -> None:
    """Delete a session folder: rename out of sight first, then remove."""
    hidden = evicting_path(session_dir)
    os.replace(session_dir, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def _finish_interrupted(data_dir: Path) -> None:
    """Remove folders left half-deleted by a crash."""
    for dev in device_dirs(data_dir):
        for leftover in evicting_leftovers(dev):
            shutil.rmtree(leftover, ignore_errors=True)


def enforce(settings: Settings) -> QuotaReport:
    """Run the cleanup once and report usage and alarm state."""
    _finish_interrupted(settings.data_dir)
    used, total = usage(settings)
    high, low = total * settings.quota_high / 100, total * settings.quota_low / 100
    if used <= high:
        return QuotaReport(used, total, False, "")
    sessions = sorted(session_dirs(settings.data_dir), key=_start_key)
    candidates = [s for s in sessions if is_touched(s)]
    if settings.evict_unuploaded:
        candidates += [s for s in sessions if not is_touched(s) and _closed(s)]
    evicted = []
    for sdir in candidates:
        if used <= low:
            break
        size = tree_size(sdir)
        uploaded = is_touched(sdir)
        try:
            remove_session(sdir)
        except OSError as err:
            log.error("cannot delete %s: %s", sdir, err)
            continue
        evicted.append(f"{sdir.parent.name}/{sdir.name}")
        log.log(
            logging.INFO if uploaded else logging.WARNING,
            "quota: deleted %s session %s (%d bytes)",
            "uploaded" if uploaded else "NOT UPLOADED",
            sdir,
            size,
        )
        used = usage(settings)[0] if settings.quota_bytes is None else used - size
    if used <= high:
        return QuotaReport(used, total, False, "", tuple(evicted))
    pending = [s for s in session_dirs(settings.data_dir) if not is_touched(s)]
    message = (
        f"data above the high watermark: {used} of {total} bytes used ({100 * used / total:.1f}% > "
        f"{settings.quota_high:g}%) and only data not yet uploaded is left ({len(pending)} sessions); "
        + (
            "nothing else may be deleted"
            if not settings.evict_unuploaded
            else "open sessions are never deleted"
        )
        + ": restore the upload or free space"
    )
    return QuotaReport(used, total, True, message, tuple(evicted))
