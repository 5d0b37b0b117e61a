"""The backlog: a scan of the sessions not yet touched and the plan of one upload pass.

What is done is read from the uploader's state files (kernel.upload_state): a batch is pending until its
verified-upload marker exists.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from kernel.layout import committed_batches, is_touched, session_dirs
from kernel.manifest import SessionManifest
from kernel.upload_state import uploaded_path

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SessionScan:
    """One untouched session as seen by a scan."""

    path: Path
    manifest: SessionManifest
    batches: list[Path]
    pending: list[Path]
    pending_bytes: int

    @property
    def closed(self) -> bool:
        """The reader finalised the session."""
        return self.manifest.closed


@dataclasses.dataclass
class Plan:
    """What one pass will do, and the whole backlog it was cut from."""

    batches: list[Path]
    batch_bytes: int
    publish: list[Path]
    backlog_batches: int
    backlog_bytes: int

    @property
    def empty(self) -> bool:
        """Nothing to upload or publish."""
        return not self.batches and not self.publish


def scan(data_dir: Path) -> list[SessionScan]:
    """Every session not yet touched, with its committed batches and those not yet uploaded."""
    found = []
    for sdir in session_dirs(data_dir):
        if is_touched(sdir):
            continue
        try:
            manifest = SessionManifest.load(sdir)
            batches = committed_batches(sdir)
        except (OSError, ValueError, TypeError) as err:
            log.warning("skipping session %s: unreadable (%s)", sdir, err)
            continue
        pending, size = [], 0
        for b in batches:
            if not uploaded_path(b).exists():
                pending.append(b)
                try:
                    size += b.stat().st_size
                except FileNotFoundError:
                    continue
        found.append(SessionScan(sdir, manifest, batches, pending, size))
    found.sort(key=lambda s: (s.manifest.started_at or "", str(s.path)))
    return found


def plan(sessions: list[SessionScan], max_batches: int) -> Plan:
    """Oldest pending batches first, at most ``max_batches``; closed sessions whose batches all fit get published."""
    chosen: list[Path] = []
    chosen_bytes = 0
    publish: list[Path] = []
    for s in sessions:
        room = max_batches - len(chosen)
        take = s.pending[:room] if room > 0 else []
        chosen.extend(take)
        chosen_bytes += sum(_size(b) for b in take)
        if s.closed and len(take) == len(s.pending):
            publish.append(s.path)
    return Plan(
        batches=chosen,
        batch_bytes=chosen_bytes,
        publish=publish,
        backlog_batches=sum(len(s.pending) for s in sessions),
        backlog_bytes=sum(s.pending_bytes for s in sessions),
    )


def _size(path: Path) -> int:
    """File size, 0 if it vanished."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
