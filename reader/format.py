"""The on-disk format of recorded sessions: the one module that defines it.

Layout under the data directory::

    <data dir>/<device id>/<session id>/
        session.json            manifest (SessionManifest), replaced atomically at start and at end
        batch-000001.csv        committed batch: never modified again
        batch-000002.csv.part   batch being written; consumers never read it
        rejects.txt             bad lines: "<host time>\t<reason>\t<verbatim bytes>" per line
        .touched                the uploader's marker: the session is closed and fully uploaded
        .upload/                the uploader's per-batch "done" markers (its Luigi targets)
        .lock                   (in the device folder) held by the reader recording that device
    <data dir>/.status/<name>.json   health published by the services (dot folders are not devices)
    <data dir>/.reserve/<name>       space a reader keeps allocated, released to save what it holds when a
                                     stop or unplug finds the disk full (a plain file of zeros)
    <data dir>/.uploader.pid, .uploader.log, .evicting-*   the uploader daemon's own files

A batch is a comma-separated file. Its first line is the header ``host_time,<device columns...>``;
each row is the host receive time (UTC, ISO 8601, microseconds, ``Z``) followed by the device's fields
exactly as received (the device's delimiter normalised to a comma, line ending and checksum removed).

The existence of a committed ``batch-NNNNNN.csv`` is the only handshake between reader and uploader.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
TIME_COLUMN = "host_time"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
BATCH_PREFIX = "batch-"
BATCH_SUFFIX = ".csv"
PART_SUFFIX = ".part"
MANIFEST_NAME = "session.json"
REJECTS_NAME = "rejects.txt"
TOUCHED_NAME = ".touched"
STATUS_DIRNAME = ".status"
RESERVE_DIRNAME = ".reserve"
SEQ_COLUMN = "seq"

_BATCH_RE = re.compile(r"^batch-(\d{6,})\.csv$")
_SAFE_ID_RE = re.compile(r"[^A-Za-z0-9._-]+")
# The one rule for a device id (a folder name under the data directory and a part of the S3 key): a single
# path component that cannot escape, nest or hide (no "/", no leading "." or "-"), at most 128 characters.
DEVICE_ID_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128 characters"
_DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# Causes of lines the reader read but could not keep (session.json "lost", the status "lost").
LOST_DISK_FULL = "disk_full"  # held in memory at stop/unplug; the disk stayed full beyond the reserve
LOST_DISK_ERROR = "disk_error"  # held in memory at stop/unplug; the disk failed otherwise (I/O error, ...)
LOST_BUFFER = "buffer_overflow"  # dropped: the memory buffer was full while the disk refused writes
LOST_KILL = "kill"  # counter gap since a session that ended in a crash (kill -9, power loss)
LOST_OFFLINE = "offline"  # counter gap since a session that ended normally (sent while no reader read)


def format_time(dt: datetime) -> str:
    """Format an aware datetime as the batch files' UTC timestamp."""
    return dt.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse a batch-file timestamp back to an aware UTC datetime."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def safe_id(text: str) -> str:
    """Map any name to one that follows the device-id rule (a safe single path component)."""
    cleaned = _SAFE_ID_RE.sub("_", text).strip("._-")[:128].rstrip("._-")
    return cleaned or "unknown"


def is_device_id(text: str) -> bool:
    """True when ``text`` follows the device-id rule (DEVICE_ID_RULE)."""
    return _DEVICE_ID_RE.fullmatch(text) is not None


def new_session_id(now: datetime, device_dir: Path) -> str:
    """Return a session id from the start time, unique within the device folder."""
    base = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
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


def device_dirs(data_dir: Path) -> Iterator[Path]:
    """Device folders of a data directory (dot folders such as .status are skipped)."""
    if not data_dir.is_dir():
        return
    for entry in sorted(os.scandir(data_dir), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            yield Path(entry.path)


def session_dirs(data_dir: Path) -> Iterator[Path]:
    """Every session folder (one holding a session.json) under a data directory, oldest first per device."""
    for dev in device_dirs(data_dir):
        for entry in sorted(os.scandir(dev), key=lambda e: e.name):
            if entry.is_dir() and not entry.name.startswith(".") and (Path(entry.path) / MANIFEST_NAME).exists():
                yield Path(entry.path)


def fsync_dir(path: Path) -> None:
    """Flush a directory entry change (create/rename) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp: Path, final: Path) -> None:
    """Atomically publish an already-fsynced temp file under its final name and flush the directory."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a whole file atomically: temp file in the same folder, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def batch_header(columns: list[str]) -> bytes:
    """The header line of a batch file for the given device columns."""
    return (",".join([TIME_COLUMN, *columns]) + "\n").encode("ascii")


def read_batch_header(path: Path) -> list[str]:
    """Device columns named in a batch file's header (without the time column)."""
    with open(path, "rb") as f:
        first = f.readline().decode("ascii").rstrip("\n")
    cols = first.split(",")
    if not cols or cols[0] != TIME_COLUMN:
        raise ValueError(f"{path}: not a batch file (header {first!r})")
    return cols[1:]


def read_batch_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Read a batch as (device columns, rows of strings with the time first); strict, for checking."""
    with open(path, "rb") as f:
        text = f.read().decode("ascii")
    if not text.endswith("\n"):
        raise ValueError(f"{path}: batch does not end with a newline")
    lines = text[:-1].split("\n")
    header = lines[0].split(",")
    if header[0] != TIME_COLUMN:
        raise ValueError(f"{path}: bad header {lines[0]!r}")
    rows = [line.split(",") for line in lines[1:]]
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}:{n}: {len(row)} fields, header has {len(header)}")
    return header[1:], rows


def read_batch_table(source: Any, columns: list[str] | None = None) -> Any:
    """Read a batch (path or file object) into a typed pyarrow Table; ValueError on a malformed batch.

    Schema: ``host_time`` timestamp[us, UTC] first, ``seq`` int64 (when recorded), channels float64.
    pyarrow parses in C (ISO 8601 times included) and releases the GIL, so files can be read in threads.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(
        column_types={TIME_COLUMN: pa.timestamp("us", tz="UTC"), SEQ_COLUMN: pa.int64()},
        timestamp_parsers=[pacsv.ISO8601],
        include_columns=None if columns is None else [TIME_COLUMN, *columns],
    )
    table = pacsv.read_csv(source, read_options=pacsv.ReadOptions(block_size=8 << 20), convert_options=convert)
    return typed_batch_table(table)


def typed_batch_table(table: Any) -> Any:
    """Cast an Arrow table (from CSV or an uploaded Parquet object) to the batch schema, time first."""
    import pyarrow as pa

    names = table.column_names
    if TIME_COLUMN not in names:
        raise ValueError(f"no {TIME_COLUMN!r} column (columns: {', '.join(names)})")
    if names[0] != TIME_COLUMN:
        table = table.select([TIME_COLUMN, *[n for n in names if n != TIME_COLUMN]])
    kinds = {TIME_COLUMN: pa.timestamp("us", tz="UTC"), SEQ_COLUMN: pa.int64()}
    schema = pa.schema([pa.field(f.name, kinds.get(f.name, pa.float64())) for f in table.schema])
    return table if table.schema.equals(schema) else table.cast(schema)


def batch_table_to_frame(table: Any) -> Any:
    """A typed batch table as a pandas DataFrame indexed by UTC host time."""
    import pandas as pd

    index = pd.DatetimeIndex(table.column(0).to_pandas(), name=TIME_COLUMN)
    frame = table.drop_columns([TIME_COLUMN]).to_pandas()
    frame.index = index
    return frame


def read_batch_frame(source: Any, columns: list[str] | None = None) -> Any:
    """Read a batch (path or file object) into a pandas DataFrame indexed by UTC host time."""
    return batch_table_to_frame(read_batch_table(source, columns))


@dataclasses.dataclass
class SessionManifest:
    """Contents of session.json: what was recorded, from what, and how it went."""

    device_id: str
    session_id: str
    port: str
    baudrate: int
    columns: list[str]
    started_at: str
    software_version: str
    state: str = "open"  # "open" while recording, "closed" once finalised
    ended_at: str | None = None
    end_reason: str | None = None  # "unplugged", "stopped", "recovered", ...
    lines: int = 0
    rejects: int = 0
    gaps: int = 0
    missing: int = 0
    batches: int = 0
    lost: dict[str, int] = dataclasses.field(default_factory=dict)  # lines read but not kept, by LOST_* cause
    last_seq: int | None = None  # the last counter read (with a counter), written when the session ends
    usb_serial: str | None = None
    format_version: int = FORMAT_VERSION

    @property
    def closed(self) -> bool:
        """True once the session was finalised and no batch will be added."""
        return self.state == "closed"

    def to_json(self) -> bytes:
        """Serialise for session.json."""
        return (json.dumps(dataclasses.asdict(self), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> SessionManifest:
        """Parse session.json contents, ignoring unknown keys from newer writers."""
        raw = json.loads(data)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def load(cls, session_dir: Path) -> SessionManifest:
        """Read a session folder's manifest."""
        return cls.from_json((session_dir / MANIFEST_NAME).read_bytes())

    def save(self, session_dir: Path) -> None:
        """Replace the session folder's manifest atomically and durably."""
        write_atomic(session_dir / MANIFEST_NAME, self.to_json())


def reserve_path(data_dir: Path, name: str) -> Path:
    """Where a service keeps its disk reserve."""
    return data_dir / RESERVE_DIRNAME / safe_id(name)


def is_touched(session_dir: Path) -> bool:
    """True when the uploader marked the session as fully uploaded."""
    return (session_dir / TOUCHED_NAME).exists()


def status_path(data_dir: Path, name: str) -> Path:
    """Where a service publishes its health JSON."""
    return data_dir / STATUS_DIRNAME / f"{safe_id(name)}.json"


def write_status(data_dir: Path, name: str, status: dict[str, Any]) -> None:
    """Publish a service's health as JSON (atomic replace; not fsynced: it is advisory)."""
    path = status_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(status).encode(), durable=False)


def read_statuses(data_dir: Path) -> dict[str, dict[str, Any]]:
    """Every published status under the data directory, by name; unreadable ones are skipped."""
    out: dict[str, dict[str, Any]] = {}
    folder = data_dir / STATUS_DIRNAME
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("*.json")):
        try:
            out[p.stem] = json.loads(p.read_bytes())
        except (OSError, ValueError):
            continue
    return out
