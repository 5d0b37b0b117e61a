"""Per-batch processing, run under Dask: validate, compute stats, convert to the upload format.

Pure functions of a batch file: the result (a kernel.upload_state.ProcessedBatch: stats and where the
object bytes are) is also written as the batch's stats marker, the Luigi "processed" marker.
A batch that fails validation is still uploaded, as its original CSV bytes (``valid`` false), so nothing
recorded is ever held back.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import io
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kernel.atomic import write_atomic
from kernel.batch import (
    NON_CHANNEL_COLUMNS,
    SEQ_COLUMN,
    TIME_COLUMN,
    format_time,
    is_batch_header,
    read_batch_table,
)
from kernel.layout import batch_stem
from kernel.objects import CONTENT_TYPES, CSV, CSV_GZ, PARQUET, BatchStats, ChannelStats
from kernel.upload_state import ProcessedBatch, ProcessingFailure, staged_object_file, stats_file
from uploader.envelope import write_batch_envelope

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidBatch(ValueError):
    """The batch file does not follow the batch format (kernel.batch)."""


def digests(data: bytes) -> tuple[str, str]:
    """(sha256 hex, md5 base64) of bytes: the manifest checksum and the Content-MD5 header."""
    return hashlib.sha256(data).hexdigest(), base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def load_table(data: bytes) -> Any:
    """Parse and validate batch bytes into a typed Arrow table (kernel.batch's schema)."""
    import pyarrow.compute as pc

    if not data.endswith(b"\n"):
        raise InvalidBatch("does not end with a newline (truncated?)")
    header = data[: data.find(b"\n")].decode("ascii", "replace")
    if not is_batch_header(header):
        raise InvalidBatch(f"bad header {header[:80]!r}")
    try:
        table = read_batch_table(io.BytesIO(data), decimals=True)  # the device's digits ride in the schema
    except (ValueError, TypeError) as err:  # pyarrow.ArrowInvalid is a ValueError
        raise InvalidBatch(str(err).splitlines()[0][:200]) from err
    names = table.column_names
    if table.num_columns != header.count(",") + 1 or len(set(names)) != len(names) or "" in names:
        raise InvalidBatch("duplicate or unnamed columns in the header")
    for name, column in zip(names, table.columns, strict=True):
        if column.null_count or (name not in NON_CHANNEL_COLUMNS and pc.any(pc.is_nan(column)).as_py()):
            raise InvalidBatch("rows with missing fields")
    return table


def _finite(value: float | None) -> float | None:
    """A JSON-safe float (NaN/inf/None become null)."""
    return float(value) if value is not None and math.isfinite(value) else None


def _time_text(micros: int) -> str:
    """A ``host_time`` value (µs since the epoch) as batch-file text; Arrow's own ``as_py`` of a zoned
    timestamp would import pandas into the daemon (about 30 MB)."""
    return format_time(_EPOCH + timedelta(microseconds=micros))


def batch_stats(table: Any) -> BatchStats:
    """Rows, time range, per-channel min/max/mean and sequence gaps of a typed batch table."""
    import numpy as np
    import pyarrow.compute as pc

    rows = table.num_rows
    first_time = last_time = None
    if rows:
        times = table.column(TIME_COLUMN)
        first_time, last_time = _time_text(times[0].value), _time_text(times[rows - 1].value)
    channels = {}
    for col in table.column_names:
        if col in NON_CHANNEL_COLUMNS:
            continue
        values = table.column(col)
        if rows:
            extremes = pc.min_max(values)
            channels[col] = ChannelStats(
                min=_finite(extremes["min"].as_py()),
                max=_finite(extremes["max"].as_py()),
                mean=_finite(pc.mean(values).as_py()),
            )
        else:
            channels[col] = ChannelStats(None, None, None)
    has_seq = SEQ_COLUMN in table.column_names
    seq_gaps = seq_missing = first_seq = last_seq = None
    if has_seq and rows > 1:
        seq = table.column(SEQ_COLUMN).combine_chunks()  # int64 without nulls (load_table checked)
        # A view of its buffer: Arrow's to_numpy() (like any Python-to-Arrow conversion) imports pandas.
        step = np.diff(np.frombuffer(seq.buffers()[1], np.int64, len(seq), seq.offset * 8))
        seq_gaps, seq_missing = int((step != 1).sum()), int((step[step > 1] - 1).sum())
    elif has_seq:
        seq_gaps = seq_missing = 0
    if has_seq and rows:
        seq = table.column(SEQ_COLUMN)
        first_seq, last_seq = seq[0].as_py(), seq[rows - 1].as_py()
    return BatchStats(rows, first_time, last_time, channels, seq_gaps, seq_missing, first_seq, last_seq)


def to_parquet(table: Any) -> bytes:
    """Parquet (zstd) bytes: host_time timestamp[us, UTC], then seq int64 and channels float64."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def encode(table: Any | None, data: bytes, fmt: str) -> bytes:
    """Bytes of the object in the given format (csv/csv.gz keep the original CSV bytes exactly)."""
    if fmt == PARQUET:
        return to_parquet(table)
    if fmt == CSV_GZ:
        return gzip.compress(data, compresslevel=6, mtime=0)  # mtime=0: same input, same bytes
    return data


def process_batch(batch: str, fmt: str, staging: str) -> ProcessedBatch | ProcessingFailure:
    """Validate, describe and convert one batch; write its object file and stats marker; return the stats.

    Never raises for bad content (the batch falls back to its raw CSV); I/O errors come back as a
    ProcessingFailure so one failure does not sink the other batches of a Dask call.
    """
    started = time.perf_counter()
    src, out_dir = Path(batch), Path(staging)
    stem = batch_stem(src)
    try:
        data = src.read_bytes()
        sha, md5 = digests(data)
        out_dir.mkdir(exist_ok=True)
        stats, error, form = None, None, fmt
        try:
            table = load_table(data)
            stats = batch_stats(table)
            payload = encode(table, data, fmt)
            write_batch_envelope(table, out_dir, stem)  # the overview's data (kernel.envelope)
        except InvalidBatch as err:
            error, form, payload = f"invalid batch: {err}", CSV, data
        if form == CSV:
            object_file = src  # upload the committed file itself: no copy
        else:
            object_file = staged_object_file(out_dir, stem, form)
            write_atomic(object_file, payload, durable=False)  # derived data: a bad copy fails Content-MD5, is redone
        # The raw CSV is its own object: hash it once.
        object_sha, object_md5 = (sha, md5) if payload is data else digests(payload)
        info = ProcessedBatch(
            name=src.name, size=len(data), sha256=sha, format=form, object_file=str(object_file),
            object_size=len(payload), object_sha256=object_sha, object_md5=object_md5,
            content_type=CONTENT_TYPES[form], valid=error is None, stats=stats, error=error,
        )
        write_atomic(stats_file(out_dir, stem), info.to_json(), durable=False)
        return dataclasses.replace(info, seconds=time.perf_counter() - started)
    except OSError as err:
        return ProcessingFailure(batch, f"{type(err).__name__}: {err}")
