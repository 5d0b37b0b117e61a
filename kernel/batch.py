"""The batch file format: a committed ``batch-NNNNNN.csv`` and the session's ``rejects.txt``.

A batch is a comma-separated file. Its first line is the header ``host_time,sample_time,<device columns...>``;
each row is the host receive time (UTC, ISO 8601, microseconds, ``Z``: when the reader got the bulk read
holding the line, shared by every line of that read), the sample time (the reader's clock model's estimate
of when the device took the sample, as integer microseconds since the Unix epoch, UTC: cheap to write per
line and exact to read back), then the device's fields exactly as received (the device's delimiter
normalised to a comma, line ending and checksum removed). Batches written before the sample clock have no
``sample_time`` column; readers then fall back to the host time.
A reject record is ``<host time>\\t<reason>\\t<verbatim bytes>\\n`` (newlines in the bytes escaped).
Readers get a typed Arrow table: ``host_time`` timestamp[us, UTC] first, ``sample_time`` timestamp[us, UTC]
(when present), ``seq`` int64, channels float64.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import repeat
from operator import floordiv
from pathlib import Path
from typing import Any

TIME_COLUMN = "host_time"
SAMPLE_TIME_COLUMN = "sample_time"  # the modelled sample time; integer Unix microseconds in the CSV
SEQ_COLUMN = "seq"
# Columns that are not channels: stats, checks and plots skip them.
NON_CHANNEL_COLUMNS = (TIME_COLUMN, SAMPLE_TIME_COLUMN, SEQ_COLUMN)
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


def sample_rows(pre: bytes, block: bytes, first_us: float, step_us: float) -> bytes:
    """Rows of ``block`` (device lines, each ending in a newline) after ``pre`` (from ``row_prefix``), the
    k-th line with sample time ``first_us + k * step_us`` (Unix microseconds, rounded down)."""
    n = block.count(b"\n")
    if b"%" in block:  # never in accepted lines (numbers only); kept safe for the format trick below
        return sample_rows_at(pre, block, [first_us + k * step_us for k in range(n)])
    # One C-level formatting call for the whole block: the rows as a format string, and the times as ints
    # from a range in nanoseconds (C-level too): about 3x cheaper than formatting row by row.
    fmt = pre + b"%d," + block[:-1].replace(b"\n", b"\n" + pre + b"%d,") + b"\n"
    # Integer nanoseconds, rounded down: ``first_us * 1000`` as a float would be off by up to 128 ns at today's
    # epoch, and a rounded-up step would add up over a long run: both could date a line at or before the
    # last line of the previous run (the clock starts each run at least 1 us after that one's last time).
    whole = int(first_us)
    first_ns, step_ns = whole * 1000 + int((first_us - whole) * 1000), int(step_us * 1000)
    times = range(first_ns, first_ns + n * step_ns, step_ns) if step_ns > 0 else repeat(first_ns, n)
    return fmt % tuple(map(floordiv, times, repeat(1000)))


def sample_rows_at(pre: bytes, block: bytes, times_us: list[float]) -> bytes:
    """Rows of ``block`` after ``pre``, each line with its own sample time (Unix microseconds)."""
    lines = block.split(b"\n")
    lines.pop()
    return b"".join([b"%s%d,%s\n" % (pre, t, line) for t, line in zip(times_us, lines, strict=True)])


def reject_records(rejects: Iterable[tuple[bytes, bytes]], t: float) -> bytes:
    """Reject-file records of (reason, verbatim bytes) pairs received at Unix time ``t``."""
    ts = datetime.fromtimestamp(t, UTC).strftime(TIME_FORMAT).encode()
    return b"".join(b"%s\t%s\t%s\n" % (ts, reason, data.replace(b"\n", b"\\n")) for reason, data in rejects)


def batch_header(columns: list[str], sample_time: bool = False) -> bytes:
    """The header line of a batch file for the given device columns (``sample_time``: with that column)."""
    times = [TIME_COLUMN, SAMPLE_TIME_COLUMN] if sample_time else [TIME_COLUMN]
    return (",".join([*times, *columns]) + "\n").encode("ascii")


def device_columns(header: list[str]) -> list[str]:
    """The device's columns among a batch header's names (without the time columns)."""
    return [c for c in header if c not in (TIME_COLUMN, SAMPLE_TIME_COLUMN)]


def seq_of_row(row: bytes, header: list[str]) -> int | None:
    """The counter of one batch row (bytes without its newline), or None when the batch has no counter."""
    if SEQ_COLUMN not in header:
        return None
    return int(row.split(b",", header.index(SEQ_COLUMN) + 1)[header.index(SEQ_COLUMN)])


def is_batch_header(line: str) -> bool:
    """True when a first line (without its newline) starts like a batch header with device columns."""
    return line.startswith(TIME_COLUMN + ",")


def read_batch_names(path: Path) -> list[str]:
    """Every column named in a batch file's header, the time columns included."""
    with open(path, "rb") as f:
        first = f.readline().decode("ascii").rstrip("\n")
    cols = first.split(",")
    if not cols or cols[0] != TIME_COLUMN:
        raise ValueError(f"{path}: not a batch file (header {first!r})")
    return cols


def read_batch_header(path: Path) -> list[str]:
    """Device columns named in a batch file's header (without the time columns)."""
    return device_columns(read_batch_names(path))


def read_batch_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """Read a batch as (columns after host_time, rows of strings with the host time first); strict, for checking."""
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
        column_types={TIME_COLUMN: pa.timestamp("us", tz="UTC"), SAMPLE_TIME_COLUMN: pa.int64(), SEQ_COLUMN: pa.int64()},
        timestamp_parsers=[pacsv.ISO8601],
        include_columns=None if columns is None else [TIME_COLUMN, SAMPLE_TIME_COLUMN, *columns],
        include_missing_columns=columns is not None,
    )
    table = pacsv.read_csv(source, read_options=pacsv.ReadOptions(block_size=8 << 20), convert_options=convert)
    if columns is not None:
        missing = [c for c in columns if table.column(c).type == pa.null()]
        if missing:
            raise ValueError(f"no column {missing[0]!r} in the batch")
        if table.column(SAMPLE_TIME_COLUMN).null_count == table.num_rows:
            table = table.drop_columns([SAMPLE_TIME_COLUMN])  # a batch from before the sample clock
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
    times = [n for n in (TIME_COLUMN, SAMPLE_TIME_COLUMN) if n in names]
    if names[: len(times)] != times:
        table = table.select([*times, *[n for n in names if n not in times]])
    stamp = pa.timestamp("us", tz="UTC")
    if SAMPLE_TIME_COLUMN in names and pa.types.is_integer(table.schema.field(SAMPLE_TIME_COLUMN).type):
        i = table.column_names.index(SAMPLE_TIME_COLUMN)  # Unix microseconds in the CSV: the same count as us
        table = table.set_column(i, SAMPLE_TIME_COLUMN, table.column(i).cast(pa.int64()).cast(stamp))
    kinds = {TIME_COLUMN: stamp, SAMPLE_TIME_COLUMN: stamp, SEQ_COLUMN: pa.int64()}
    schema = pa.schema(
        [pa.field(f.name, kinds.get(f.name, pa.float64()), metadata=f.metadata) for f in table.schema]
    )
    return table if table.schema.equals(schema) else table.cast(schema)


def with_sample_time(table: Any) -> Any:
    """A typed batch table with its ``sample_time`` column; a batch from before the sample clock gets its host
    time there (the fallback: the best time it has)."""
    if SAMPLE_TIME_COLUMN in table.column_names:
        return table
    return table.add_column(1, SAMPLE_TIME_COLUMN, table.column(TIME_COLUMN))


def batch_table_to_frame(table: Any, time_axis: str = SAMPLE_TIME_COLUMN) -> Any:
    """A typed batch table as a pandas DataFrame indexed by ``time_axis`` (UTC sample time by default, the
    host time for batches without one; or ``host_time``), the device columns as columns."""
    import pandas as pd

    table = with_sample_time(table)
    index = pd.DatetimeIndex(table.column(time_axis).to_pandas(), name=time_axis)
    frame = table.drop_columns([TIME_COLUMN, SAMPLE_TIME_COLUMN]).to_pandas()
    frame.index = index
    return frame


def read_batch_frame(source: Any, columns: list[str] | None = None, time_axis: str = SAMPLE_TIME_COLUMN) -> Any:
    """Read a batch (path or file object) into a pandas DataFrame indexed by ``time_axis``."""
    return batch_table_to_frame(read_batch_table(source, columns), time_axis)
