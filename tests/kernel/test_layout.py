"""The data directory's layout: device ids, session ids, batch names (kernel.layout)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.layout import (
    batch_filename,
    batch_index,
    batch_stem,
    committed_batches,
    committed_path,
    is_device_id,
    new_session_id,
    part_path,
    partial_batches,
    safe_id,
    session_order,
)


@given(st.text(max_size=300))
def test_safe_id_always_follows_the_device_id_rule(text):
    assert is_device_id(safe_id(text))


@pytest.mark.parametrize("text", ["lab/monitor1", "/tmp/x", "..", ".hidden", "-x", "a b", "", "x" * 129, "ü"])
def test_device_ids_that_escape_nest_or_hide_are_refused(text):
    assert not is_device_id(text)


@pytest.mark.parametrize("text", ["monitor1", "FT232R_A50285BI", "ttyUSB0", "lab.monitor-1"])
def test_plain_device_ids_are_fine(text):
    assert is_device_id(text)


def test_batch_names_round_trip_and_temp_files_are_not_batches(tmp_path: Path) -> None:
    final = tmp_path / batch_filename(7)
    assert batch_index(final.name) == 7 and batch_stem(final) == "batch-000007"
    assert committed_path(part_path(final)) == final and batch_index(part_path(final).name) is None
    for path in (final, part_path(tmp_path / batch_filename(8)), tmp_path / batch_filename(2)):
        path.write_bytes(b"")
    assert [p.name for p in committed_batches(tmp_path)] == [batch_filename(2), batch_filename(7)]
    assert partial_batches(tmp_path) == [part_path(tmp_path / batch_filename(8))]


def test_session_ids_are_unique_per_device_and_sort_by_start(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 8, 59, tzinfo=UTC)
    ids = []
    for _ in range(3):
        ids.append(new_session_id(now, tmp_path))
        (tmp_path / ids[-1]).mkdir()
    assert ids == ["20261125T085900Z", "20261125T085900Z-2", "20261125T085900Z-3"]
    later = ["20261125T085900Z-10", "20261125T085900Z-2", "20261125T085900Z"]
    assert sorted(later, key=session_order) == later[::-1]  # -10 after -2: not a string sort
