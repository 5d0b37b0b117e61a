"""Write loaded data back out: Parquet in the upload contract's schema, or CSV in the batch file format."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analysis.choices import EXPORT_FORMATS
from analysis.errors import AnalysisError
from analysis.readers import TIME_TYPE
from kernel.batch import ARROW_TIME_FORMAT, SAMPLE_TIME_COLUMN, TIME_COLUMN, batch_header, device_columns
from kernel.digits import field_decimals, format_fixed

log = logging.getLogger(__name__)



def frame_to_table(frame: pd.DataFrame) -> pa.Table:
    """A loaded frame as an Arrow table: host_time timestamp[us, UTC] first, then the device columns."""
    cols = {TIME_COLUMN: pa.array(frame.index.as_unit("us"), TIME_TYPE)}
    for c in frame.columns:
        cols[str(c)] = pa.array(frame[c].to_numpy())
    return pa.table(cols)


def table_to_batch_csv(table: pa.Table, header: bool = True) -> bytes:
    """An Arrow table in the batch schema as batch-file bytes (``host_time`` as ISO UTC with ``Z``; channels
    with the decimal places their fields record, else as the shortest text of the float)."""
    times = pc.strftime(table.column(0).cast(TIME_TYPE), format=ARROW_TIME_FORMAT)
    body = table.set_column(0, TIME_COLUMN, times)
    names = table.column_names[1:]
    if SAMPLE_TIME_COLUMN in names:  # integer Unix microseconds in batch files
        i = table.column_names.index(SAMPLE_TIME_COLUMN)
        body = body.set_column(i, SAMPLE_TIME_COLUMN, table.column(i).cast(TIME_TYPE).cast(pa.int64()))
    for i, field in enumerate(table.schema):
        places = field_decimals(field)
        if places is not None:  # the device's digits (kernel.digits): -0.1930 stays -0.1930
            body = body.set_column(i, field.name, format_fixed(table.column(i), places))
    buf = io.BytesIO()
    pacsv.write_csv(body, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    head = batch_header(device_columns(names), SAMPLE_TIME_COLUMN in names) if header else b""
    return head + buf.getvalue()


def frame_to_batch_csv(frame: pd.DataFrame) -> bytes:
    """A frame as the bytes of a batch file."""
    return table_to_batch_csv(frame_to_table(frame))


class TableWriter:
    """Streams tables of one schema into a Parquet (zstd) or CSV file, so exports need not fit in memory."""

    def __init__(self, out: str | Path, form: str) -> None:
        if form not in EXPORT_FORMATS:
            raise AnalysisError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, not {form!r}")
        self.out = Path(out)
        self.form = form
        self.rows = 0
        self._tmp = self.out.with_name(f".{self.out.name}.tmp")
        self._parquet: pq.ParquetWriter | None = None
        self._csv = None
        self.out.parent.mkdir(parents=True, exist_ok=True)

    def write(self, table: pa.Table) -> None:
        """Append one table."""
        if self.form == "parquet":
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._tmp, table.schema, compression="zstd")
            self._parquet.write_table(table)
        else:
            if self._csv is None:
                self._csv = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
                self._csv.write(batch_header(table.column_names[1:]))
            self._csv.write(table_to_batch_csv(table, header=False))
        self.rows += table.num_rows

    def close(self) -> Path:
        """Finish the file and move it into place (nothing appears under ``out`` on failure)."""
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
        if self.rows == 0 and not self._tmp.exists():
            raise AnalysisError("nothing to export: no rows selected")
        self._tmp.replace(self.out)
        return self.out

    def abort(self) -> None:
        """Drop the partial output."""
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
        self._tmp.unlink(missing_ok=True)


def export_tables(tables: Iterable[pa.Table], out: str | Path, form: str) -> tuple[Path, int]:
    """Write tables (e.g. one per batch) to ``out``; returns the path and the number of rows."""
    writer = TableWriter(out, form)
    try:
        for t in tables:
            if t.num_rows:
                writer.write(t)
        path = writer.close()
    except BaseException:
        writer.abort()
        raise
    log.info("exported %d rows to %s", writer.rows, path)
    return path, writer.rows


def export_frame(frame: pd.DataFrame, out: str | Path, form: str) -> tuple[Path, int]:
    """Write an in-memory frame to ``out`` as Parquet or batch-format CSV."""
    return export_tables([frame_to_table(frame)], out, form)
