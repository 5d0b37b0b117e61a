"""Per-file readers: one batch (local CSV, or S3 Parquet / csv.gz / csv) into a typed Arrow table.

Every reader returns the same schema: ``host_time`` timestamp[us, UTC], ``seq`` int64 (when the device has a
counter), every other channel float64. pyarrow parses the CSV in C and releases the GIL, so files are read in
parallel threads by the loader.
"""

from __future__ import annotations

import gzip
import io
import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis import s3
from analysis.errors import BadData
from analysis.settings import AnalysisSettings
from analysis.sources import BatchRef
from kernel.batch import TIME_COLUMN, batch_table_to_frame, read_batch_table, typed_batch_table
from kernel.objects import CSV, CSV_GZ, PARQUET

log = logging.getLogger(__name__)

TIME_TYPE = pa.timestamp("us", tz="UTC")


def read_csv_table(
    source: str | pa.NativeFile | io.BytesIO, columns: list[str] | None = None, decimals: bool = False
) -> pa.Table:
    """Read batch CSV (a path, or a file object) into an Arrow table with the batch schema.

    With ``decimals`` (a path or ``io.BytesIO``), channel fields record the device's decimal places.
    """
    return read_batch_table(source, columns, decimals=decimals)


def read_parquet_table(source: str | pa.NativeFile, columns: list[str] | None = None) -> pa.Table:
    """Read an uploaded Parquet batch into an Arrow table with the batch schema."""
    cols = None if columns is None else [TIME_COLUMN, *columns]
    return normalise_table(pq.read_table(source, columns=cols))


def normalise_table(table: pa.Table) -> pa.Table:
    """Cast to the batch schema: time first as timestamp[us, UTC], seq int64, channels float64."""
    try:
        return typed_batch_table(table)
    except ValueError as err:
        if isinstance(err, pa.ArrowInvalid):
            raise
        raise BadData(str(err)) from err


def read_batch(
    ref: BatchRef,
    columns: list[str] | None = None,
    settings: AnalysisSettings | None = None,
    decimals: bool = False,
) -> pa.Table:
    """Read one batch, wherever and in whatever format it is, as a typed Arrow table.

    ``decimals``: channel fields carry the device's decimal places (kernel.digits) for CSV and csv.gz
    batches; Parquet objects carry them from the upload.
    """
    try:
        if ref.is_s3:
            bucket, key = s3.parse_s3_url(ref.location)
            data = s3.get_bytes(settings or AnalysisSettings(), bucket, key)
            if ref.format == PARQUET:
                return read_parquet_table(pa.BufferReader(data), columns)
            if ref.format == CSV_GZ:
                if decimals:
                    return read_csv_table(io.BytesIO(gzip.decompress(data)), columns, decimals)
                return read_csv_table(pa.CompressedInputStream(pa.BufferReader(data), "gzip"), columns)
            return read_csv_table(io.BytesIO(data) if decimals else pa.BufferReader(data), columns, decimals)
        if ref.format == CSV:
            return read_csv_table(ref.location, columns, decimals)
        if ref.format == PARQUET:
            return read_parquet_table(ref.location, columns)
        if decimals:
            with gzip.open(ref.location, "rb") as f:
                return read_csv_table(io.BytesIO(f.read()), columns, decimals)
        return read_csv_table(pa.CompressedInputStream(pa.OSFile(ref.location), "gzip"), columns)
    except (pa.ArrowInvalid, OSError, KeyError, EOFError) as err:
        raise BadData(f"{ref.location}: cannot read {ref.format} batch ({err})") from err


def table_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table in the batch schema → DataFrame with a UTC DatetimeIndex named host_time."""
    return batch_table_to_frame(table)


def read_batch_frame(
    ref: BatchRef, columns: list[str] | None = None, settings: AnalysisSettings | None = None
) -> pd.DataFrame:
    """Read one batch as a DataFrame (the unit of a lazy dask partition)."""
    return table_to_frame(read_batch(ref, columns, settings))
