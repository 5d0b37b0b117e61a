"""Per-batch processing run in Dask worker processes: validate, compute stats, convert to the upload format.

Pure functions of a batch file: the result (stats + where the object bytes are) is also written as the
batch's ``.stats.json`` in the session's ``.upload/`` folder, which is the Luigi "processed" marker.
A batch that fails validation is still uploaded, as its original CSV bytes (``valid: false``), so nothing
recorded is ever held back.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

from reader.format import SEQ_COLUMN, TIME_COLUMN, format_time, read_batch_table, write_atomic

CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv.gz": "application/gzip", "csv": "text/csv"}


class InvalidBatch(ValueError):
    """The batch file does not follow the batch format (reader/format.py)."""


def digests(data: bytes) -> tuple[str, str]:
    """(sha256 hex, md5 base64) of bytes: the manifest checksum and the Content-MD5 header."""
    return hashlib.sha256(data).hexdigest(), base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def load_table(data: bytes) -> Any:
    """Parse and validate batch bytes into a typed Arrow table (reader.format's batch schema)."""
    import pyarrow.compute as pc

    if not data.endswith(b"\n"):
        raise InvalidBatch("does not end with a newline (truncated?)")
    header = data[: data.find(b"\n")].decode("ascii", "replace")
    if not header.startswith(TIME_COLUMN + ","):
        raise InvalidBatch(f"bad header {header[:80]!r}")
    try:
        table = read_batch_table(io.BytesIO(data))
    except (ValueError, TypeError) as err:  # pyarrow.ArrowInvalid is a ValueError
        raise InvalidBatch(str(err).splitlines()[0][:200]) from err
    names = table.column_names
    if table.num_columns != header.count(",") + 1 or len(set(names)) != len(names) or "" in names:
        raise InvalidBatch("duplicate or unnamed columns in the header")
    for name, column in zip(names, table.columns, strict=True):
        if column.null_count or (name not in (TIME_COLUMN, SEQ_COLUMN) and pc.any(pc.is_nan(column)).as_py()):
            raise InvalidBatch("rows with missing fields")
    return table


def _finite(value: float | None) -> float | None:
    """A JSON-safe float (NaN/inf/None become null)."""
    return float(value) if value is not None and math.isfinite(value) else None


def batch_stats(table: Any) -> dict[str, Any]:
    """Rows, time range, per-channel min/max/mean and sequence gaps of a typed batch table."""
    import numpy as np
    import pyarrow.compute as pc

    rows = table.num_rows
    out: dict[str, Any] = {"rows": rows, "first_time": None, "last_time": None, "channels": {}}
    if rows:
        times = table.column(TIME_COLUMN)
        out["first_time"] = format_time(times[0].as_py())
        out["last_time"] = format_time(times[rows - 1].as_py())
    for col in table.column_names:
        if col in (TIME_COLUMN, SEQ_COLUMN):
            continue
        values = table.column(col)
        if rows:
            extremes = pc.min_max(values)
            out["channels"][col] = {
                "min": _finite(extremes["min"].as_py()),
                "max": _finite(extremes["max"].as_py()),
                "mean": _finite(pc.mean(values).as_py()),
            }
        else:
            out["channels"][col] = {"min": None, "max": None, "mean": None}
    has_seq = SEQ_COLUMN in table.column_names
    if has_seq and rows > 1:
        step = np.diff(table.column(SEQ_COLUMN).to_numpy())
        out["seq_gaps"] = int((step != 1).sum())
        out["seq_missing"] = int((step[step > 1] - 1).sum())
    else:
        out["seq_gaps"] = out["seq_missing"] = 0 if has_seq else None
    if has_seq and rows:
        seq = table.column(SEQ_COLUMN)
        out["first_seq"], out["last_seq"] = seq[0].as_py(), seq[rows - 1].as_py()
    return out


def to_parquet(table: Any) -> bytes:
    """Parquet (zstd) bytes: host_time timestamp[us, UTC], then seq int64 and channels float64."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def encode(table: Any | None, data: bytes, fmt: str) -> bytes:
    """Bytes of the object in the given format (csv/csv.gz keep the original CSV bytes exactly)."""
    if fmt == "parquet":
        return to_parquet(table)
    if fmt == "csv.gz":
        return gzip.compress(data, compresslevel=6, mtime=0)  # mtime=0: same input, same bytes
    return data


def stats_path(staging: Path, stem: str) -> Path:
    """The processed marker of a batch."""
    return staging / f"{stem}.stats.json"


def process_batch(batch: str, fmt: str, staging: str) -> dict[str, Any]:
    """Validate, describe and convert one batch; write its object file and stats marker; return the stats.

    Never raises for bad content (the batch falls back to its raw CSV); I/O errors are returned as
    ``{"batch": ..., "error": ...}`` so one failure does not sink the other batches of a Dask call.
    """
    started = time.perf_counter()
    src, out_dir = Path(batch), Path(staging)
    stem = src.name.removesuffix(".csv")
    try:
        data = src.read_bytes()
        sha, md5 = digests(data)
        info: dict[str, Any] = {
            "name": src.name,
            "size": len(data),
            "sha256": sha,
            "format": fmt,
            "valid": True,
        }
        try:
            table = load_table(data)
            info.update(batch_stats(table))
            payload = encode(table, data, fmt)
        except InvalidBatch as err:
            info.update(valid=False, error=f"invalid batch: {err}", format="csv", rows=None)
            payload = data
        ext = info["format"]
        out_dir.mkdir(exist_ok=True)
        if ext == "csv":
            info["object_file"] = str(src)  # upload the committed file itself: no copy
        else:
            target = out_dir / f"{stem}.{ext}"
            write_atomic(
                target, payload, durable=False
            )  # derived data: a bad copy fails Content-MD5, is redone
            info["object_file"] = str(target)
        info["object_size"] = len(payload)
        # The raw CSV is its own object: hash it once.
        info["object_sha256"], info["object_md5"] = (sha, md5) if payload is data else digests(payload)
        info["content_type"] = CONTENT_TYPES[ext]
        write_atomic(stats_path(out_dir, stem), json.dumps(info, sort_keys=True).encode(), durable=False)
        info["seconds"] = time.perf_counter() - started
        return info
    except OSError as err:
        return {"batch": batch, "error": f"{type(err).__name__}: {err}"}
