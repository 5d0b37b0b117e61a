"""Find the batches behind a source: a local session, device folder or data directory, or an S3 prefix."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import s3
from analysis.errors import BadData, SourceNotFound
from analysis.settings import AnalysisSettings
from kernel.batch import (
    SAMPLE_TIME_COLUMN,
    device_columns,
    format_time,
    parse_time,
    read_batch_header,
)
from kernel.layout import (
    MANIFEST_NAME,
    SESSION_ID_FORMAT,
    batch_index,
    committed_batches,
    device_dirs,
    is_hidden,
    is_session_dir,
)
from kernel.manifest import SessionManifest
from kernel.objects import (
    CSV,
    FORMATS,
    PARQUET,
    UploadedManifest,
    is_manifest_key,
    key_parent,
    manifest_key,
    parse_batch_object,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BatchRef:
    """One batch to read: a local path or an ``s3://`` URL, its format, and its time span when known."""

    location: str
    format: str
    session: str
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    rows: int | None = None

    @property
    def is_s3(self) -> bool:
        """True when the batch lives on S3."""
        return s3.is_s3_url(self.location)


@dataclasses.dataclass
class SessionInfo:
    """A session found for a source: where it is, its manifest, and its batches in order."""

    location: str
    manifest: SessionManifest
    batches: list[BatchRef]
    raw: dict[str, Any]
    complete: bool = True  # False: no session.json, found from its batch files or objects


@dataclasses.dataclass
class Selection:
    """Everything a source resolves to: sessions in time order and their device columns."""

    source: str
    sessions: list[SessionInfo]

    @property
    def batches(self) -> list[BatchRef]:
        """All batches of all sessions, in order."""
        return [b for s in self.sessions for b in s.batches]

    @property
    def columns(self) -> list[str]:
        """Device columns (seq and channels) in the order of the first session that names them."""
        seen: list[str] = []
        for s in self.sessions:
            for c in s.manifest.columns:
                if c not in seen:
                    seen.append(c)
        return seen


def resolve(
    source: str | os.PathLike[str], device: str | None = None, settings: AnalysisSettings | None = None
) -> Selection:
    """Resolve a source to its sessions; raises SourceNotFound when there is nothing to read."""
    settings = settings or AnalysisSettings()
    if s3.is_s3_url(source):
        sessions = _resolve_s3(str(source), device, settings)
    else:
        sessions = _resolve_local(Path(source), device)
    sessions = [s for s in sessions if s.batches]
    if not sessions:
        raise SourceNotFound(f"{source}: no committed batches to read")
    return Selection(str(source), sessions)


# --- local -----------------------------------------------------------------------------------------------


def _resolve_local(path: Path, device: str | None) -> list[SessionInfo]:
    if not path.exists():
        raise SourceNotFound(f"{path}: no such session, device folder or data directory")
    if _is_local_session(path):
        return [_local_session(path)]
    sessions = [d for d in sorted(path.iterdir()) if d.is_dir() and not is_hidden(d.name) and _is_local_session(d)]
    if sessions:
        if device is not None and path.name != device:
            raise SourceNotFound(f"{path}: is the folder of device {path.name!r}, not {device!r}")
        return [_local_session(d) for d in sessions]
    devices = [d.name for d in device_dirs(path)]
    if device is not None:
        if device not in devices:
            raise SourceNotFound(f"{path}: no device {device!r} (devices: {', '.join(devices) or 'none'})")
        return _resolve_local(path / device, None)
    if len(devices) == 1:
        return _resolve_local(path / devices[0], None)
    if devices:
        raise SourceNotFound(
            f"{path}: holds several devices ({', '.join(devices)}); choose one with --device"
        )
    raise SourceNotFound(f"{path}: no sessions here (expected <data dir>/<device>/<session>/{MANIFEST_NAME})")


def _is_local_session(path: Path) -> bool:
    """A session folder: one with a manifest, or with batch files (a session still recording or copied
    without its manifest)."""
    if is_session_dir(path):
        return True
    try:
        names = [e.name for e in os.scandir(path) if e.is_file()]
    except OSError:
        return False
    return any(batch_index(n) is not None or parse_batch_object(n) is not None for n in names)


def _local_session(path: Path) -> SessionInfo:
    complete = (path / MANIFEST_NAME).is_file()
    if complete:
        try:
            raw = json.loads((path / MANIFEST_NAME).read_bytes())
            manifest = SessionManifest.from_json(json.dumps(raw))
        except (OSError, ValueError, TypeError) as err:
            raise BadData(f"{path / MANIFEST_NAME}: unreadable manifest ({err})") from err
    else:
        raw, manifest = {}, listed_manifest(path.parent.name, path.name)
    batches = [BatchRef(str(p), CSV, manifest.session_id) for p in committed_batches(path)]
    if not batches:  # a local copy of an uploaded session (e.g. ``aws s3 sync``): batch-*.parquet / .csv.gz
        batches = [
            BatchRef(str(path / name), form, manifest.session_id)
            for name, form in _uploaded_batches(p.name for p in path.iterdir())
        ]
    if not complete:
        log.warning("%s: incomplete session (no %s: still recording, or copied without it); reading its %d "
                    "batch files", path, MANIFEST_NAME, len(batches))
    if not manifest.columns and batches:
        manifest.columns = _local_columns(batches[0])
    return SessionInfo(str(path), manifest, batches, raw, complete)


def listed_manifest(device: str, session: str) -> SessionManifest:
    """Stand-in manifest of a session known only from its batches: ids, and the start time its id tells."""
    try:
        started = format_time(datetime.strptime(session[:16], SESSION_ID_FORMAT).replace(tzinfo=UTC))
    except ValueError:
        started = ""
    return SessionManifest(device_id=device, session_id=session, port="", baudrate=0, columns=[],
                           started_at=started, software_version="")


def _local_columns(ref: BatchRef) -> list[str]:
    """Device columns of a local batch, from its header (CSV, csv.gz) or schema (Parquet)."""
    try:
        if ref.format == CSV:
            return read_batch_header(Path(ref.location))
        if ref.format == PARQUET:
            import pyarrow.parquet as pq

            return device_columns(pq.read_schema(ref.location).names)
        with gzip.open(ref.location, "rb") as f:
            return device_columns(f.readline().decode("ascii").rstrip("\n").split(","))
    except (OSError, ValueError) as err:
        raise BadData(f"{ref.location}: cannot read its columns ({err})") from err


def local_span(path: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last sample time (host time without one) of a local batch, reading only its first and last lines."""
    with open(path, "rb") as f:
        head = f.read(4096).split(b"\n")
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 4096))
        tail = f.read().rstrip(b"\n").split(b"\n")
    if len(head) < 2 or not head[1]:
        raise BadData(f"{path}: batch has no rows")
    try:
        if head[0].split(b",", 2)[1:2] == [SAMPLE_TIME_COLUMN.encode()]:
            first_us, last_us = (int(row.split(b",", 2)[1]) for row in (head[1], tail[-1]))
            return pd.Timestamp(first_us, unit="us", tz="UTC"), pd.Timestamp(last_us, unit="us", tz="UTC")
        first = head[1].split(b",", 1)[0].decode("ascii")
        last = tail[-1].split(b",", 1)[0].decode("ascii")
        return pd.Timestamp(parse_time(first)), pd.Timestamp(parse_time(last))
    except ValueError as err:
        raise BadData(f"{path}: bad host time ({err})") from err


def parquet_span(path: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last sample time (host time without one) of a local Parquet batch from its footer statistics."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.metadata
    names = pf.schema_arrow.names
    col = names.index(SAMPLE_TIME_COLUMN) if SAMPLE_TIME_COLUMN in names else 0
    lows, highs = [], []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max:
            return None, None
        lows.append(pd.Timestamp(stats.min))
        highs.append(pd.Timestamp(stats.max))
    if not lows:
        return None, None
    first, last = min(lows), max(highs)
    return (first if first.tzinfo else first.tz_localize("UTC")), (
        last if last.tzinfo else last.tz_localize("UTC")
    )


def with_spans(batches: list[BatchRef]) -> list[BatchRef]:
    """The same batches with first/last filled in for local CSV and Parquet files that lack them."""
    out = []
    for b in batches:
        if (b.first is None or b.last is None) and not b.is_s3 and b.format in (CSV, PARQUET):
            try:
                first, last = local_span(b.location) if b.format == CSV else parquet_span(b.location)
            except (OSError, ValueError) as err:
                raise BadData(f"{b.location}: cannot read its time span ({err})") from err
            b = dataclasses.replace(b, first=first, last=last)
        out.append(b)
    return out


# --- S3 --------------------------------------------------------------------------------------------------


def _resolve_s3(url: str, device: str | None, settings: AnalysisSettings) -> list[SessionInfo]:
    bucket, prefix = s3.parse_s3_url(url)
    if prefix:
        data = s3.get_bytes_or_none(settings, bucket, manifest_key(prefix))
        if data is not None:
            return [_s3_session(settings, bucket, prefix, data)]
    base = f"{prefix}/" if prefix else ""
    # Session prefixes: those of manifests and those of batch objects (a session without its manifest).
    objects: dict[str, list[str]] = {}
    manifests: set[str] = set()
    for k, _ in s3.list_keys(settings, bucket, base):
        if is_manifest_key(k):
            manifests.add(key_parent(k))
            objects.setdefault(key_parent(k), [])
        elif parse_batch_object(k) is not None:
            objects.setdefault(key_parent(k), []).append(k)

    def session(sp: str) -> SessionInfo:
        if sp in manifests:
            return _s3_session(settings, bucket, sp, s3.get_bytes(settings, bucket, manifest_key(sp)))
        return _listed_s3_session(settings, bucket, sp, objects[sp])

    if prefix in objects:
        return [session(prefix)]
    depth = {sp: sp[len(base) :].count("/") for sp in objects}
    here = sorted(sp for sp in objects if depth[sp] == 0)
    if here:
        return [session(sp) for sp in here]
    by_device: dict[str, str] = {}
    for sp in sorted(objects):
        device_prefix = key_parent(sp)
        by_device.setdefault(device_prefix.rsplit("/", 1)[-1], device_prefix)
    devices = sorted(by_device)
    if device is not None and device in by_device:
        return _resolve_s3(f"s3://{bucket}/{by_device[device]}", None, settings)
    if device is not None:
        raise SourceNotFound(f"{url}: no device {device!r} (devices: {', '.join(devices) or 'none'})")
    if len(devices) == 1:
        return _resolve_s3(f"s3://{bucket}/{by_device[devices[0]]}", None, settings)
    if devices:
        raise SourceNotFound(f"{url}: holds several devices ({', '.join(devices)}); choose one with --device")
    raise SourceNotFound(
        f"{url}: no uploaded sessions here (expected .../<device>/<session>/ holding batch objects "
        f"and {MANIFEST_NAME})"
    )


def _listed_s3_session(settings: AnalysisSettings, bucket: str, prefix: str, keys: list[str]) -> SessionInfo:
    """A session without its uploaded manifest (upload cut short, or still recording): its listed batches."""
    from analysis.readers import read_batch  # readers import this module

    device, _, sid = prefix.rpartition("/")
    manifest = listed_manifest(device.rsplit("/", 1)[-1], sid)
    batches = [BatchRef(f"s3://{bucket}/{k}", form, sid) for k, form in _uploaded_batches(keys)]
    log.warning("s3://%s/%s: incomplete session (no %s: upload cut short, or still recording); reading the "
                "%d batch objects listed", bucket, prefix, MANIFEST_NAME, len(batches))
    if batches:
        manifest.columns = read_batch(batches[0], None, settings).column_names[1:]
    return SessionInfo(f"s3://{bucket}/{prefix}", manifest, batches, {}, complete=False)


def _ts(value: str | None) -> pd.Timestamp | None:
    """A batch time of the uploaded manifest as a UTC timestamp."""
    return pd.Timestamp(parse_time(value)) if value is not None else None


def _s3_session(settings: AnalysisSettings, bucket: str, prefix: str, data: bytes) -> SessionInfo:
    """A session from its uploaded manifest: one batch per entry, with its key, format and time span."""
    where = f"s3://{bucket}/{manifest_key(prefix)}"
    try:
        raw = json.loads(data)
        uploaded = UploadedManifest.from_json(data)
        batches = [
            BatchRef(
                f"s3://{bucket}/{b.key}",
                b.format,
                uploaded.session.session_id,
                _ts(b.stats.first_time) if b.stats else None,
                _ts(b.stats.last_time) if b.stats else None,
                b.rows,
            )
            for b in uploaded.batches
        ]
    except (ValueError, TypeError) as err:
        raise BadData(f"{where}: unreadable manifest ({err})") from err
    return SessionInfo(f"s3://{bucket}/{prefix}", uploaded.session, batches, raw)


def _uploaded_batches(names: Iterable[str]) -> list[tuple[str, str]]:
    """(name or key, format) of uploaded batch objects in batch order, one per batch (Parquet preferred)."""
    found: dict[str, tuple[str, str]] = {}
    for name in names:
        parsed = parse_batch_object(name)
        if parsed is None:
            continue
        stem, form = parsed
        if stem not in found or FORMATS.index(form) < FORMATS.index(found[stem][1]):
            found[stem] = (name, form)
    return [found[stem] for stem in sorted(found)]
