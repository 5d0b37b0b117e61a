"""The device's digits: how many decimal places each channel was printed with, kept beside the float values.

A batch file holds the device's fields as text (``-0.1930``); typed tables hold float64 (``-0.193``). When a
batch is read with ``decimals=True`` (kernel.batch.read_batch_table), each channel's field in the Arrow schema
carries ``decimals`` metadata: the most decimal places any of its fields had in that batch (none when a field
used an exponent). Parquet keeps field metadata, so uploaded Parquet objects carry it too. Writing batch
CSV (analysis export) formats each value with that many decimal places, giving back the device's text
whenever the device prints a fixed number of decimals (it does in practice; a value printed with fewer
digits than the others of its column gains trailing zeros, never a different value).
"""

from __future__ import annotations

from typing import Any

DECIMALS_KEY = b"decimals"
MAX_DECIMALS = 15
_EXACT = 2.0**53  # beyond this a scaled value is no longer an exact integer in float64


def head_decimals(head: bytes) -> dict[str, int]:
    """Most decimal places per column in the complete lines of a batch's first bytes (header first)."""
    lines = head.decode("ascii", "replace").split("\n")[:-1]  # the last piece may be a cut line
    if not lines:
        return {}
    names = lines[0].split(",")
    most = dict.fromkeys(names, 0)
    for line in lines[1:]:
        for name, text in zip(names, line.split(","), strict=False):
            dot = text.find(".")
            if dot >= 0 and len(text) - dot - 1 > most[name]:
                most[name] = len(text) - dot - 1
    return most


def needed_decimals(values: Any, start: int = 0) -> int | None:
    """Fewest decimal places, at least ``start``, that write every finite value back exactly (None: > 15).

    A value parsed from text with d decimals is rint(x * 10**d) / 10**d exactly (a correctly rounded
    division of exact integers), so the device's own d always passes.
    """
    import numpy as np

    x = np.asarray(values, dtype="float64")
    x = x[np.isfinite(x)]
    for d in range(start, MAX_DECIMALS + 1):
        scale = 10.0**d
        scaled = x * scale
        if np.any(np.abs(scaled) >= _EXACT):
            return None
        if np.array_equal(np.rint(scaled) / scale, x):
            return d
    return None


def record_decimals(table: Any, head: bytes) -> Any:
    """A typed batch table whose channel fields carry their decimal places: the most printed in the head of
    the batch, raised until every value of the column is written back exactly."""
    import pyarrow as pa

    from kernel.batch import NON_CHANNEL_COLUMNS

    seen = head_decimals(head)
    fields = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if field.name not in NON_CHANNEL_COLUMNS:
            places = needed_decimals(column.to_numpy(), seen.get(field.name, 0))
            field = with_decimals(field, places)
        fields.append(field)
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def with_decimals(field: Any, decimals: int | None) -> Any:
    """A schema field carrying (or, for None, not carrying) the channel's decimal places."""
    meta = dict(field.metadata or {})
    meta.pop(DECIMALS_KEY, None)
    if decimals is not None:
        meta[DECIMALS_KEY] = str(decimals).encode()
    return field.with_metadata(meta or None)


def field_decimals(field: Any) -> int | None:
    """The decimal places recorded on a schema field, or None."""
    raw = (field.metadata or {}).get(DECIMALS_KEY)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def format_fixed(values: Any, decimals: int) -> Any:
    """Float values as text with exactly ``decimals`` places (``-0.1930``); NaN/inf and huge values as Arrow
    prints them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    x = np.asarray(values.to_numpy(zero_copy_only=False), dtype="float64")
    scale = 10**decimals
    scaled = x * scale
    ok = np.isfinite(scaled) & (np.abs(scaled) < _EXACT)
    ints = np.rint(np.where(ok, scaled, 0.0)).astype("int64")
    neg = np.signbit(x)  # like printf: -0.0 and -0.00001 at four places are "-0.0000"
    mag = np.abs(ints)
    text = pa.array(mag // scale).cast(pa.string())
    if decimals:
        frac = pc.utf8_lpad(pa.array(mag % scale).cast(pa.string()), decimals, "0")
        text = pc.binary_join_element_wise(text, frac, ".")
    text = pc.if_else(pa.array(neg), pc.binary_join_element_wise("-", text, ""), text)
    plain = pa.array(x).cast(pa.string())
    return pc.if_else(pa.array(ok), text, plain)
