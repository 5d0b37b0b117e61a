"""The device's digits: decimal places recorded when a batch is read, and values written back with them."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from kernel.batch import read_batch_table
from kernel.digits import field_decimals, format_fixed, needed_decimals

BATCH = (
    b"host_time,seq,a,b,c\n"
    b"2026-11-25T09:00:00.000000Z,1,-0.1930,12,1.50\n"
    b"2026-11-25T09:00:00.001000Z,2,0.0000,-3,2.25\n"
)


def test_reading_with_decimals_records_each_channels_places() -> None:
    table = read_batch_table(io.BytesIO(BATCH), decimals=True)
    assert {f.name: field_decimals(f) for f in table.schema} == {
        "host_time": None, "seq": None, "a": 4, "b": 0, "c": 2
    }
    assert table.equals(read_batch_table(io.BytesIO(BATCH)))  # same values, only the fields know more


def test_a_value_needing_more_places_than_the_head_raises_them() -> None:
    """Places are seen in the head of a batch, then raised until every value is written back exactly."""
    assert needed_decimals([0.5, 1.25], start=1) == 2
    assert needed_decimals([0.5, 1.0], start=3) == 3  # the device's padding is kept
    assert needed_decimals([0.1 + 0.2]) is None  # no text of <= 15 places gives this float: shortest repr then


@pytest.mark.parametrize(
    ("values", "places", "text"),
    [
        ([-0.193, 0.0, 1.5, -12.0, -0.0], 4, ["-0.1930", "0.0000", "1.5000", "-12.0000", "-0.0000"]),
        ([12.0, -3.0], 0, ["12", "-3"]),
        ([float("nan"), 1e30], 2, ["nan", "1e+30"]),
    ],
)
def test_format_fixed_writes_the_device_text(values: list[float], places: int, text: list[str]) -> None:
    assert format_fixed(pa.array(values), places).to_pylist() == text
