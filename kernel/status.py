"""Health documents: what each service publishes in ``<data dir>/.status/<name>.json`` and the web app reads.

``reader-<device id>.json`` holds a :class:`ReaderStatus` (also the body of the stream's ``status``
message); ``uploader.json`` holds an :class:`UploaderStatus`, merged field by field because a cleanup-only
run updates just its quota. Documents are advisory: replaced atomically but not fsynced; readers skip
unreadable ones and ignore fields they do not know.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from kernel.atomic import write_atomic
from kernel.layout import status_dir, status_path

READER_PREFIX = "reader-"
UPLOADER_NAME = "uploader"


def reader_status_name(device_id: str) -> str:
    """The status (and disk reserve) name of the reader recording ``device_id``."""
    return READER_PREFIX + device_id


def _known(cls: type, raw: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in raw.items() if k in names}


@dataclasses.dataclass(frozen=True)
class ReaderStatus:
    """One reader's health: device, session, connection, rate and counters, disk trouble."""

    device: str | None = None
    session: str = ""
    connected: bool = False
    port: str = ""
    recording: bool = False
    rate: float = 0.0
    lines: int = 0
    rejects: int = 0
    gaps: int = 0
    missing: int = 0
    frames_dropped: int = 0
    lost_lines: int = 0
    lost: dict[str, int] = dataclasses.field(default_factory=dict)  # by kernel.manifest.LOST_* cause
    disk_error: str | None = None
    unit: str = ""  # of the device's values (the reader's SENSOR_UNIT); "" when not configured
    clock: dict[str, Any] = dataclasses.field(default_factory=dict)  # the sample clock so far (manifest.ClockQuality)
    time: float = 0.0  # Unix time of the snapshot

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (every field)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ReaderStatus:
        """Read a document, ignoring unknown fields (missing ones take their defaults)."""
        return cls(**_known(cls, raw))


@dataclasses.dataclass(frozen=True)
class QuotaStatus:
    """The uploader's disk-quota report."""

    used_bytes: int
    total_bytes: int
    alarm: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON object under ``quota``."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class UploaderProgress:
    """What the upload loop reports after each iteration."""

    state: str
    backlog_batches: int
    backlog_bytes: int
    last_upload: float | None
    error: str | None
    failures: int
    uploaded_batches: int = 0  # batches uploaded since the process started (a counter)
    uploaded_bytes: int = 0  # their bytes

    def to_dict(self) -> dict[str, Any]:
        """The document fields it sets."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class UploaderStatus:
    """The uploader's document as read back: progress fields, quota, when and by which process."""

    state: str | None = None
    backlog_batches: int | None = None
    backlog_bytes: int | None = None
    last_upload: float | None = None
    error: str | None = None
    failures: int | None = None
    uploaded_batches: int | None = None
    uploaded_bytes: int | None = None
    quota: QuotaStatus | None = None
    updated: float | None = None
    pid: int | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> UploaderStatus:
        """Read a document, ignoring unknown fields; a malformed quota counts as none."""
        values = _known(cls, raw)
        quota = values.get("quota")
        try:
            values["quota"] = QuotaStatus(**_known(QuotaStatus, quota)) if isinstance(quota, dict) else None
        except TypeError:
            values["quota"] = None
        return cls(**values)


def quota_update(quota: QuotaStatus) -> dict[str, Any]:
    """The document fields a quota report sets."""
    return {"quota": quota.to_dict()}


def write_status(data_dir: Path, name: str, status: dict[str, Any]) -> None:
    """Publish a service's health as JSON (atomic replace; not fsynced: it is advisory)."""
    path = status_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(status).encode(), durable=False)


def read_statuses(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Every published status under the data directory, by name; unreadable ones are skipped."""
    out: dict[str, dict[str, Any]] = {}
    folder = status_dir(data_dir)
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(p.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            out[p.stem] = doc
    return out


def reader_statuses(statuses: dict[str, dict[str, Any]]) -> dict[str, ReaderStatus]:
    """The readers' documents among ``read_statuses``, by device id."""
    out = {}
    for name, doc in statuses.items():
        if name.startswith(READER_PREFIX):
            status = ReaderStatus.from_dict(doc)
            out[str(status.device or name.removeprefix(READER_PREFIX))] = status
    return out


def uploader_status(statuses: dict[str, dict[str, Any]]) -> UploaderStatus | None:
    """The uploader's document among ``read_statuses``, if it published one."""
    doc = statuses.get(UPLOADER_NAME)
    return UploaderStatus.from_dict(doc) if doc is not None else None
