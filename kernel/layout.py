"""The data directory's layout: every folder and file name the services share, and how to find them.

Layout under the data directory::

    <data dir>/<device id>/<session id>/
        session.json            manifest (kernel.manifest), replaced atomically at start and at end
        batch-000001.csv        committed batch (kernel.batch): never modified again
        batch-000002.csv.part   batch being written; consumers never read it
        rejects.txt             bad lines (kernel.batch.reject_records)
        envelope.parquet        the session's min/max envelope (kernel.envelope), written by the uploader when it
                                publishes the session and uploaded with its manifest
        markers.jsonl           event markers (kernel.markers), one JSON object a line, appended by the web app;
                                uploaded with the session's manifest
        .touched                the uploader's marker: the session is closed and fully uploaded
        .upload/                the uploader's per-batch state (kernel.upload_state)
        .lock                   (in the device folder) held by the reader recording that device
    <data dir>/.status/<name>.json   health published by the services (kernel.status; dot folders are not devices)
    <data dir>/.reserve/<name>       space a reader keeps allocated, released to save what it holds when a
                                     stop or unplug finds the disk full (a plain file of zeros)
    <data dir>/.uploader.pid, .uploader.log, .evicting-*   the uploader daemon's own files

The existence of a committed ``batch-NNNNNN.csv`` is the only handshake between reader and uploader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

BATCH_PREFIX = "batch-"
BATCH_SUFFIX = ".csv"
PART_SUFFIX = ".part"
MANIFEST_NAME = "session.json"
REJECTS_NAME = "rejects.txt"
MARKERS_NAME = "markers.jsonl"
ENVELOPE_NAME = "envelope.parquet"
TOUCHED_NAME = ".touched"
UPLOAD_DIRNAME = ".upload"
LOCK_NAME = ".lock"
STATUS_DIRNAME = ".status"
RESERVE_DIRNAME = ".reserve"
UPLOADER_PID_NAME = ".uploader.pid"
UPLOADER_LOG_NAME = ".uploader.log"
EVICTING_PREFIX = ".evicting-"  # a session folder being deleted (renamed out of sight first)
SESSION_ID_FORMAT = "%Y%m%dT%H%M%SZ"

_BATCH_RE = re.compile(r"^batch-(\d{6,})\.csv$")
_SAFE_ID_RE = re.compile(r"[^A-Za-z0-9._-]+")
# The one rule for a device id (a folder name under the data directory and a part of the S3 key): a single
# path component that cannot escape, nest or hide (no "/", no leading "." or "-"), at most 128 characters.
DEVICE_ID_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128 characters"
_DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_id(text: str) -> str:
    """Map any name to one that follows the device-id rule (a safe single path component)."""
    cleaned = _SAFE_ID_RE.sub("_", text).strip("._-")[:128].rstrip("._-")
    return cleaned or "unknown"


def is_device_id(text: str) -> bool:
    """True when ``text`` follows the device-id rule (DEVICE_ID_RULE)."""
    return _DEVICE_ID_RE.fullmatch(text) is not None


def session_id_at(now: datetime) -> str:
    """The base session id of a start time (``20261125T085900Z``)."""
    return now.astimezone(UTC).strftime(SESSION_ID_FORMAT)


def new_session_id(now: datetime, device_dir: Path) -> str:
    """Return a session id from the start time, unique within the device folder."""
    base = session_id_at(now)
    candidate, n = base, 1
    while (device_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def session_order(session_id: str) -> tuple[str, int]:
    """Sort key of session ids: start time, then the -2, -3... of sessions started in the same second."""
    base, _, n = session_id.partition("-")
    return base, int(n) if n.isdigit() else 1


def batch_filename(index: int) -> str:
    """Name of the committed batch number ``index`` (1-based)."""
    return f"{BATCH_PREFIX}{index:06d}{BATCH_SUFFIX}"


def batch_index(name: str) -> int | None:
    """Index of a committed batch file name, or None for anything else (temp files included)."""
    m = _BATCH_RE.match(name)
    return int(m.group(1)) if m else None


def batch_stem(batch: Path | str) -> str:
    """``batch-000001`` for ``batch-000001.csv`` (the part object names and state files share)."""
    return Path(batch).name.removesuffix(BATCH_SUFFIX)


def part_path(final: Path) -> Path:
    """The temp file a batch is written to before its commit."""
    return final.with_name(final.name + PART_SUFFIX)


def committed_path(part: Path) -> Path:
    """The committed name of a temp batch file."""
    return part.with_name(part.name.removesuffix(PART_SUFFIX))


def committed_batches(session_dir: Path) -> list[Path]:
    """Committed batch files of a session, in order."""
    found = []
    for entry in os.scandir(session_dir):
        idx = batch_index(entry.name)
        if idx is not None and entry.is_file():
            found.append((idx, Path(entry.path)))
    return [p for _, p in sorted(found)]


def partial_batches(session_dir: Path) -> list[Path]:
    """Temp batch files (left by a running or crashed writer)."""
    return sorted(p for p in session_dir.glob(f"{BATCH_PREFIX}*{BATCH_SUFFIX}{PART_SUFFIX}"))


def is_hidden(name: str) -> bool:
    """True for a dot name (.status, .upload, .evicting-*): never a device or a session folder."""
    return name.startswith(".")


def is_session_dir(path: Path) -> bool:
    """True for a folder holding a session manifest."""
    return (path / MANIFEST_NAME).is_file()


def device_dirs(data_dir: Path) -> Iterator[Path]:
    """Device folders of a data directory (dot folders such as .status are skipped)."""
    if not data_dir.is_dir():
        return
    for entry in sorted(os.scandir(data_dir), key=lambda e: e.name):
        if entry.is_dir() and not is_hidden(entry.name):
            yield Path(entry.path)


def session_dirs(data_dir: Path) -> Iterator[Path]:
    """Every session folder (one holding a session.json) under a data directory, oldest first per device."""
    for dev in device_dirs(data_dir):
        for entry in sorted(os.scandir(dev), key=lambda e: e.name):
            if entry.is_dir() and not is_hidden(entry.name) and (Path(entry.path) / MANIFEST_NAME).exists():
                yield Path(entry.path)


def lock_path(device_dir: Path) -> Path:
    """The lock file a reader holds on a device folder."""
    return device_dir / LOCK_NAME


def envelope_path(session_dir: Path) -> Path:
    """The session's envelope file (kernel.envelope)."""
    return session_dir / ENVELOPE_NAME


def rejects_path(session_dir: Path) -> Path:
    """The session's reject file."""
    return session_dir / REJECTS_NAME


def reserve_path(data_dir: Path, name: str) -> Path:
    """Where a service keeps its disk reserve."""
    return data_dir / RESERVE_DIRNAME / safe_id(name)


def touched_path(session_dir: Path) -> Path:
    """The uploader's "fully uploaded" marker of a session."""
    return session_dir / TOUCHED_NAME


def is_touched(session_dir: Path) -> bool:
    """True when the uploader marked the session as fully uploaded."""
    return touched_path(session_dir).exists()


def status_dir(data_dir: Path) -> Path:
    """The folder of the services' health documents."""
    return data_dir / STATUS_DIRNAME


def status_path(data_dir: Path, name: str) -> Path:
    """Where a service publishes its health JSON."""
    return status_dir(data_dir) / f"{safe_id(name)}.json"


def uploader_pid_path(data_dir: Path) -> Path:
    """The uploader's default pid/lock file."""
    return data_dir / UPLOADER_PID_NAME


def uploader_log_path(data_dir: Path) -> Path:
    """The detached uploader's default log file."""
    return data_dir / UPLOADER_LOG_NAME


def evicting_path(session_dir: Path) -> Path:
    """Where a session folder is renamed to while it is being deleted."""
    return session_dir.with_name(EVICTING_PREFIX + session_dir.name)


def evicting_leftovers(device_dir: Path) -> list[Path]:
    """Session folders a crash left half-deleted."""
    return sorted(device_dir.glob(EVICTING_PREFIX + "*"))
