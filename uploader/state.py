"""Local upload state: the ``.upload/`` folder inside each session, the backlog scan and the pass plan.

Per batch, inside ``<session>/.upload/``:
  ``batch-NNNNNN.stats.json``   processed (stats + object checksums), written by the Dask worker
  ``batch-NNNNNN.<ext>``        the converted object, deleted once its upload is verified
  ``batch-NNNNNN.json``         uploaded and verified (HEAD matched): the Luigi "done" marker
All are written atomically (reader.format.write_atomic), so a crash leaves either the old or the new file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from reader.format import SessionManifest, committed_batches, is_touched, session_dirs

log = logging.getLogger(__name__)

STATE_DIRNAME = ".upload"


def staging_dir(session_dir: Path) -> Path:
    """The uploader's private folder inside a session."""
    return session_dir / STATE_DIRNAME


def stem(batch: Path) -> str:
    """``batch-000001`` for ``batch-000001.csv``."""
    return batch.name.removesuffix(".csv")


def uploaded_path(batch: Path) -> Path:
    """The verified-upload marker of a batch."""
    return staging_dir(batch.parent) / f"{stem(batch)}.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON state file, or None when missing or unreadable."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def object_key(prefix: str, box_id: str, session_dir: Path, name: str) -> str:
    """``<prefix>/<box>/<device>/<session>/<name>``: the documented key layout."""
    parts = [prefix, box_id, session_dir.parent.name, session_dir.name, name]
    return "/".join(p for p in parts if p)


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
