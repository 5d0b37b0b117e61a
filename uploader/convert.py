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

from reader.format import SEQ_COLUMN, TIME_COLUMN, format_time, read_batch_frame, write_atomic

CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv.gz": "application/gzip", "csv": "text/csv"}


class InvalidBatch(ValueError):
    """The batch file does not follow the batch format (reader/format.py)."""


def digests(data: bytes) -> tuple[str, str]:
    """(sha256 hex, md5 base64) of bytes: the manifest checksum and the Content-MD5 header."""
    return hashlib.sha256(data).hexdigest(), base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def load_frame(data: bytes) -> Any:
    """Parse and validate batch bytes into a DataFrame indexed by UTC host time."""
    if not data.endswith(b"\n"):
        raise InvalidBatch("does not end with a newline (truncated?)")
    header = data[: data.find(b"\n")].decode("ascii", "replace")
    if not header.startswith(TIME_COLUMN + ","):
        raise InvalidBatch(f"bad header {header[:80]!r}")
    try:
        df = read_batch_frame(io.BytesIO(data))
    except (ValueError, TypeError) as err:  # pandas ParserError is a ValueError
        raise InvalidBatch(str(err).splitlines()[0][:200]) from err
    if len(df.columns) != header.count(","):
        raise InvalidBatch("duplicate or unnamed columns in the header")
    if df.isna().to_numpy().any() or df.index.isna().any():
        raise InvalidBatch("rows with missing fields")
    return df


def _finite(value: float) -> float | None:
    """A JSON-safe float (NaN/inf become null)."""
    return float(value) if math.isfinite(value) else None


def batch_stats(df: Any) -> dict[str, Any]:
    """Rows, time range, per-channel min/max/mean and sequence gaps of a batch frame."""
    import numpy as np

    out: dict[str, Any] = {"rows": len(df), "first_time": None, "last_time": None, "channels": {}}
    if len(df):
        out["first_time"] = format_time(df.index[0].to_pydatetime())
        out["last_time"] = format_time(df.index[-1].to_pydatetime())
    for col in df.columns:
        if col == SEQ_COLUMN:
            continue
        values = df[col].to_numpy()
        out["channels"][col] = (
            {"min": _finite(values.min()), "max": _finite(values.max()), "mean": _finite(values.mean())}
            if len(values)
            else {"min": None, "max": None, "mean": None}
        )
    if SEQ_COLUMN in df.columns and len(df) > 1:
        seq = df[SEQ_COLUMN].to_numpy()
        step = np.diff(seq)
        out["seq_gaps"] = int((step != 1).sum())
        out["seq_missing"] = int((step[step > 1] - 1).sum())
    else:
        out["seq_gaps"] = 0 if SEQ_COLUMN in df.columns else None
        out["seq_missing"] = 0 if SEQ_COLUMN in df.columns else None
    if SEQ_COLUMN in df.columns and len(df):
        out["first_seq"], out["last_seq"] = int(df[SEQ_COLUMN].iloc[0]), int(df[SEQ_COLUMN].iloc[-1])
    return out


def to_parquet(df: Any) -> bytes:
    """Parquet (zstd) bytes: host_time timestamp[us, UTC], then seq int64 and channels float64."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field(TIME_COLUMN, pa.timestamp("us", tz="UTC"))]
    arrays = [pa.array(df.index.as_unit("us"), type=fields[0].type)]
    for col in df.columns:
        kind = pa.int64() if col == SEQ_COLUMN else pa.float64()
        fields.append(pa.field(col, kind))
        arrays.append(pa.array(df[col].to_numpy(), type=kind))
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), buf, compression="zstd")
    return buf.getvalue()


def encode(df: Any | None, data: bytes, fmt: str) -> bytes:
    """Bytes of the object in the given format (csv/csv.gz keep the original CSV bytes exactly)."""
    if fmt == "parquet":
        return to_parquet(df)
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
        sha, _ = digests(data)
        info: dict[str, Any] = {
            "name": src.name,
            "size": len(data),
            "sha256": sha,
            "format": fmt,
            "valid": True,
        }
        try:
            df = load_frame(data)
            info.update(batch_stats(df))
            payload = encode(df, data, fmt)
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
        info["object_sha256"], info["object_md5"] = digests(payload)
        info["content_type"] = CONTENT_TYPES[ext]
        write_atomic(stats_path(out_dir, stem), json.dumps(info, sort_keys=True).encode(), durable=False)
        info["seconds"] = time.perf_counter() - started
        return info
    except OSError as err:
        return {"batch": batch, "error": f"{type(err).__name__}: {err}"}
