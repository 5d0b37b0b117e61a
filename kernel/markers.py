"""Event markers: the session's ``markers.jsonl``, one JSON object a line, appended as researchers mark events.

A marker record (:class:`Marker`) is ``{"id": ..., "time": ..., "label": ..., "source": ..., "user": ...}``:
``time`` is the box's UTC clock when the marker was placed, in the batch files' host-time format
(kernel.batch.TIME_FORMAT), so markers and samples share one time axis; ``source`` is ``dashboard`` or
``api``; ``user`` the logged-in user, if any. The web app appends records (one whole line per ``write`` on
an ``O_APPEND`` descriptor under an exclusive ``flock``, then fsync, so concurrent writers never interleave);
the uploader uploads the file with the session; the analysis reads it from disk or S3. Readers skip a torn or
unreadable line (a crash mid-write) instead of failing: markers are annotations, the samples are the record.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import unicodedata
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kernel.batch import format_time, parse_time
from kernel.layout import MARKERS_NAME

SOURCE_DASHBOARD = "dashboard"
SOURCE_API = "api"
SOURCES = (SOURCE_DASHBOARD, SOURCE_API)
MAX_LABEL = 200  # characters
FILE_MODE = 0o664  # the web app appends; the reader's group may read and clean up


class MarkerError(ValueError):
    """A marker that cannot be stored: bad label, unknown source."""


def check_label(label: Any) -> str:
    """The label without surrounding blanks; MarkerError when empty, too long or holding control characters."""
    if not isinstance(label, str):
        raise MarkerError("the label must be a string")
    text = label.strip()
    if not text:
        raise MarkerError("the label is empty")
    if len(text) > MAX_LABEL:
        raise MarkerError(f"the label is {len(text)} characters long; at most {MAX_LABEL}")
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    if bad:
        raise MarkerError(f"the label holds a control character ({bad[0]!r})")
    return text


@dataclasses.dataclass(frozen=True)
class Marker:
    """One event marker: when (host UTC time), what (label), placed from where and by whom."""

    id: str
    time: str  # kernel.batch.TIME_FORMAT
    label: str
    source: str
    user: str | None = None

    @property
    def at(self) -> datetime:
        """The marker's time as an aware UTC datetime."""
        return parse_time(self.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the record."""
        return dataclasses.asdict(self)

    def to_line(self) -> bytes:
        """The record as one line of the file (compact JSON, non-ASCII kept, newline-terminated)."""
        return (json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_dict(cls, raw: Any) -> Marker:
        """Read a record; MarkerError when a field is missing or invalid."""
        if not isinstance(raw, dict):
            raise MarkerError("a marker record is a JSON object")
        try:
            marker = cls(str(raw["id"]), str(raw["time"]), check_label(raw["label"]), str(raw["source"]),
                         None if raw.get("user") is None else str(raw["user"]))
            marker.at  # noqa: B018 - validates the time format
        except (KeyError, ValueError) as err:
            raise MarkerError(f"bad marker record ({err})") from err
        return marker


def new_marker(label: str, source: str, user: str | None = None, at: datetime | None = None) -> Marker:
    """A new validated marker placed now (or at ``at``), with a fresh id."""
    if source not in SOURCES:
        raise MarkerError(f"unknown marker source {source!r}")
    when = at if at is not None else datetime.now(UTC)
    return Marker(uuid.uuid4().hex[:16], format_time(when), check_label(label), source, user or None)


def markers_path(session_dir: Path) -> Path:
    """The markers file of a session folder."""
    return session_dir / MARKERS_NAME


def append_marker(session_dir: Path, marker: Marker) -> None:
    """Append a record as one whole line (O_APPEND, one write, under flock), then fsync (and the new folder entry)."""
    path = markers_path(session_dir)
    line = marker.to_line()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        # Writers take turns, so the torn-line check below sees only whole lines of the others.
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a crash left a torn line: start on a fresh one
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"{path}: short write ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)
    if size == 0:
        _fsync_dir(session_dir)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_markers(data: bytes | str) -> list[Marker]:
    """The records of a markers file's content, in time order; torn or unreadable lines are skipped."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    out = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            out.append(Marker.from_dict(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return sorted(out, key=lambda m: m.time)


def read_markers(session_dir: Path) -> list[Marker]:
    """The markers of a session folder (none when it has no markers file)."""
    try:
        return parse_markers(markers_path(session_dir).read_bytes())
    except FileNotFoundError:
        return []


def markers_bytes(markers: Iterable[Marker]) -> bytes:
    """The content of a markers file holding these records."""
    return b"".join(m.to_line() for m in markers)
