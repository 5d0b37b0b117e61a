"""The batch file format: a committed ``batch-NNNNNN.csv`` and the session's ``rejects.txt``.

A batch is a comma-separated file. Its first line is the header ``host_time,<device columns...>``;
each row is the host receive time (UTC, ISO 8601, microseconds, ``Z``) followed by the device's fields
exactly as received (the device's delimiter normalised to a comma, line ending and checksum removed).
A reject record is ``<host time>\\t<reason>\\t<verbatim bytes>\\n`` (newlines in the bytes escaped).
Readers get a typed Arrow table: ``host_time`` timestamp[us, UTC] first, ``seq`` int64, channels float64.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TIME_COLUMN = "host_time"
SEQ_COLUMN = "seq"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# TIME_FORMAT in Arrow's strftime, where %S prints the microseconds too.
ARROW_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(dt: datetime) -> str:
    """Format an aware datetime as the batch files' UTC timestamp."""
    return dt.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """Parse a batch-file timestamp back to an aware UTC datetime."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def row_prefix(t: float) -> bytes:
    """The start of every row received at Unix time ``t``: its host time and the comma."""
    return datetime.fromtimestamp(t, UTC).strftime(TIME_FORMAT + ",").encode()


def reject_records(rejects: Iterable[tuple[bytes, bytes]], t: float) -> bytes:
    """Reject-file records of (reason, verbatim bytes) pairs received at Unix time ``t``."""
    ts = datetime.fromtimestamp(t, UTC).strftime(TIME_FORMAT).encode()
    return b"".join(b"%s\t%s\t%s\n" % (ts, reason, data.replace(b"\n", b"\\n")) for reason, data in rejects)


def batch_header(columns: list[str]) -> bytes:
    """The header line of a batch file for the given device columns."""
    return (",".join([TIME_COLUMN, *columns]) + "\n").encode("ascii")


def is_batch_header(line: str) -> bool:
    """True when a first line (without its newline) starts like a batch header with device columns."""
    return line.startswith(TIME_COLUMN + ",")


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


def read_batch_table(source: Any, columns: list[str] | None = None, *, decimals: bool = False) -> Any:
    """Read a batch (path or file object) into a typed pyarrow Table; ValueError on a malformed batch.

    pyarrow parses in C (ISO 8601 times included) and releases the GIL, so files can be read in threads.
    With ``decimals`` (a path or an ``io.BytesIO``), each channel's field records the device's decimal
    places (kernel.digits).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    head = _head_bytes(source) if decimals else b""
    convert = pacsv.ConvertOptions(
        column_types={TIME_COLUMN: pa.timestamp("us", tz="UTC"), SEQ_COLUMN: pa.int64()},
        timestamp_parsers=[pacsv.ISO8601],
        include_columns=None if columns is None else [TIME_COLUMN, *columns],
    )
    table = pacsv.read_csv(source, read_options=pacsv.ReadOptions(block_size=8 << 20), convert_options=convert)
    table = typed_batch_table(table)
    if decimals:
        from kernel.digits import record_decimals

        table = record_decimals(table, head)
    return table


def _head_bytes(source: Any, size: int = 65536) -> bytes:
    """The first bytes of a batch given as a path or an ``io.BytesIO`` (left at its position)."""
    import io

    if isinstance(source, io.BytesIO):
        start = source.tell()
        with source.getbuffer() as buf:
            return bytes(buf[start : start + size])
    with open(source, "rb") as f:
        return f.read(size)


def typed_batch_table(table: Any) -> Any:
    """Cast an Arrow table (from CSV or an uploaded Parquet object) to the batch schema, time first."""
    import pyarrow as pa

    names = table.column_names
    if TIME_COLUMN not in names:
        raise ValueError(f"no {TIME_COLUMN!r} column (columns: {', '.join(names)})")
    if names[0] != TIME_COLUMN:
        table = table.select([TIME_COLUMN, *[n for n in names if n != TIME_COLUMN]])
    kinds = {TIME_COLUMN: pa.timestamp("us", tz="UTC"), SEQ_COLUMN: pa.int64()}
    schema = pa.schema(
        [pa.field(f.name, kinds.get(f.name, pa.float64()), metadata=f.metadata) for f in table.schema]
    )
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
