"""The envelope format: per-channel minimum and maximum over fixed one-second bins, a small Parquet file.

An envelope table has ``bin`` timestamp[us, UTC] (the start of a one-second bin, ``BIN_US`` long), ``rows``
int64 (samples in the bin), then ``<channel>.min`` and ``<channel>.max`` float64 for every channel (``seq``
excluded), bins in time order, one row per bin that holds samples. A day at 1 kHz is 86 400 rows whatever
the sample rate, so an overview reads the envelope instead of the samples; coarser levels (a pixel column
of a plot) are derived on read by folding bins.

The uploader writes one envelope per processed batch (``.upload/batch-NNNNNN.envelope.parquet``) and, when
it publishes a session, the session's envelope (``envelope.parquet``, kernel.layout) into the session
folder and next to the uploaded manifest (kernel.objects). Envelopes are derived data: rebuilt from the
batches when missing.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from kernel.batch import NON_CHANNEL_COLUMNS, SAMPLE_TIME_COLUMN, TIME_COLUMN

BIN_US = 1_000_000  # one bin is one second of host time
BIN_COLUMN = "bin"
ROWS_COLUMN = "rows"
MIN_SUFFIX = ".min"
MAX_SUFFIX = ".max"
ENVELOPE_SUFFIX = ".envelope.parquet"  # a batch's envelope in the uploader's staging folder


def min_column(channel: str) -> str:
    """The name of a channel's minimum column."""
    return channel + MIN_SUFFIX


def max_column(channel: str) -> str:
    """The name of a channel's maximum column."""
    return channel + MAX_SUFFIX


def envelope_channels(table: Any) -> list[str]:
    """The channels an envelope table describes, in order."""
    return [n.removesuffix(MIN_SUFFIX) for n in table.column_names if n.endswith(MIN_SUFFIX)]


def _schema(channels: list[str]) -> Any:
    import pyarrow as pa

    fields = [pa.field(BIN_COLUMN, pa.timestamp("us", tz="UTC")), pa.field(ROWS_COLUMN, pa.int64())]
    for c in channels:
        fields += [pa.field(min_column(c), pa.float64()), pa.field(max_column(c), pa.float64())]
    return pa.schema(fields)


def _build(bins_us: Any, rows: Any, lows: list[Any], highs: list[Any], channels: list[str]) -> Any:
    import pyarrow as pa

    arrays = [pa.array(bins_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")), pa.array(rows, pa.int64())]
    for lo, hi in zip(lows, highs, strict=True):
        arrays += [pa.array(lo, pa.float64()), pa.array(hi, pa.float64())]
    return pa.Table.from_arrays(arrays, schema=_schema(channels))


def _reduce(keys: Any, weights: Any, lows: list[Any], highs: list[Any]) -> tuple[Any, Any, list[Any], list[Any]]:
    """Fold rows sharing a key (sorted keys): sum the weights, fmin the lows, fmax the highs (NaN skipped)."""
    import numpy as np

    if keys.size == 0:
        return keys, weights, lows, highs
    starts = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    return (
        keys[starts],
        np.add.reduceat(weights, starts),
        [np.fmin.reduceat(x, starts) for x in lows],
        [np.fmax.reduceat(x, starts) for x in highs],
    )


def batch_envelope(table: Any) -> Any:
    """The envelope of a typed batch table (kernel.batch schema): min/max of each channel per second of
    sample time (host time for a batch from before the sample clock)."""
    import numpy as np

    channels = [c for c in table.column_names if c not in NON_CHANNEL_COLUMNS]
    clock = SAMPLE_TIME_COLUMN if SAMPLE_TIME_COLUMN in table.column_names else TIME_COLUMN
    t = table.column(clock).cast("int64").to_numpy()
    values = [table.column(c).to_numpy().astype("float64", copy=False) for c in channels]
    if t.size and not bool(np.all(t[1:] >= t[:-1])):  # times go back (a host clock step): sort first
        order = np.argsort(t, kind="stable")
        t, values = t[order], [v[order] for v in values]
    keys = (t // BIN_US) * BIN_US
    bins, rows, lows, highs = _reduce(keys, np.ones(t.size, dtype="int64"), values, values)
    return _build(bins, rows, lows, highs, channels)


def combine(tables: Iterable[Any]) -> Any:
    """One envelope from several (batches of a session, sessions): bins merged, in time order."""
    import numpy as np
    import pyarrow as pa

    tables = [t for t in tables if t is not None]
    channels: list[str] = []
    for t in tables:
        channels += [c for c in envelope_channels(t) if c not in channels]
    schema = _schema(channels)
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables([_conform(t, schema) for t in tables])
    keys = table.column(BIN_COLUMN).cast("int64").to_numpy()
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    rows = table.column(ROWS_COLUMN).to_numpy()[order]
    lows = [table.column(min_column(c)).to_numpy(zero_copy_only=False)[order] for c in channels]
    highs = [table.column(max_column(c)).to_numpy(zero_copy_only=False)[order] for c in channels]
    return _build(*_reduce(keys, rows, lows, highs), channels)


def _conform(table: Any, schema: Any) -> Any:
    """A table with every column of ``schema`` (NaN for channels it lacks), in schema order."""
    import pyarrow as pa

    n = table.num_rows
    cols = [
        table.column(f.name) if f.name in table.column_names else pa.array([float("nan")] * n, pa.float64())
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)


def to_bytes(table: Any) -> bytes:
    """An envelope as the bytes of its Parquet file (zstd)."""
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_envelope(source: Any) -> Any:
    """An envelope table from a Parquet file (path, bytes or file object); ValueError when it is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(source, bytes | bytearray | memoryview):
        source = pa.BufferReader(source)
    try:
        table = pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"not an envelope file ({err})") from err
    names = table.column_names
    if names[:2] != [BIN_COLUMN, ROWS_COLUMN] or len(names) % 2:
        raise ValueError(f"not an envelope file (columns: {', '.join(names[:6])})")
    return table.cast(_schema(envelope_channels(table)))
