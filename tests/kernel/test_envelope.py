"""The envelope format: one-second min/max bins of a batch, merged across batches, through its Parquet file."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from analysis.synthetic import batch_csv_bytes, synth_frame
from kernel.batch import read_batch_table
from kernel.envelope import (
    BIN_COLUMN,
    ROWS_COLUMN,
    batch_envelope,
    combine,
    envelope_channels,
    max_column,
    min_column,
    read_envelope,
    to_bytes,
)

FRAME = synth_frame("2026-11-25T09:00:00.250Z", 200.0, 7.5, 3, seed=4)


def table_of(frame: pd.DataFrame) -> object:
    return read_batch_table(io.BytesIO(batch_csv_bytes(frame)))


def check(env: object, frame: pd.DataFrame) -> None:
    """The envelope holds pandas' per-second min, max and count of the samples."""
    grouped = frame.drop(columns="seq").groupby(frame.index.floor("1s"))
    got = env.to_pandas().set_index(BIN_COLUMN)  # type: ignore[attr-defined]
    assert list(got.index) == list(grouped.size().index)
    assert list(got[ROWS_COLUMN]) == list(grouped.size())
    for c in ("ch1", "ch2", "ch3"):
        np.testing.assert_array_equal(got[min_column(c)], grouped.min()[c])
        np.testing.assert_array_equal(got[max_column(c)], grouped.max()[c])


def test_batch_envelope_is_the_min_max_of_each_second() -> None:
    env = batch_envelope(table_of(FRAME))
    assert envelope_channels(env) == ["ch1", "ch2", "ch3"] and env.num_rows == 8  # 09:00:00 .. 09:00:07
    check(env, FRAME)


def test_parquet_round_trip_keeps_every_value() -> None:
    env = batch_envelope(table_of(FRAME))
    assert read_envelope(to_bytes(env)).equals(env)


def test_batches_combine_into_the_envelope_of_the_whole() -> None:
    """A second split between two batches is merged; the order of the parts does not matter."""
    parts = [FRAME.iloc[:333], FRAME.iloc[333:1000], FRAME.iloc[1000:]]
    envs = [batch_envelope(table_of(p)) for p in parts]
    check(combine(reversed(envs)), FRAME)


def test_host_time_going_back_is_sorted_into_its_bins() -> None:
    shuffled = FRAME.iloc[np.random.default_rng(1).permutation(len(FRAME))]
    check(batch_envelope(table_of(shuffled)), FRAME)


def test_a_file_that_is_no_envelope_is_refused() -> None:
    with pytest.raises(ValueError, match="not an envelope"):
        read_envelope(b"not parquet at all")
    with pytest.raises(ValueError, match="not an envelope"):
        read_envelope(to_bytes(table_of(FRAME)))  # a batch, not its envelope
