"""The markers file: append, read back, a torn last line, concurrent writers, label validation."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kernel.layout import MARKERS_NAME
from kernel.markers import (
    MAX_LABEL,
    SOURCE_API,
    SOURCE_DASHBOARD,
    Marker,
    MarkerError,
    append_marker,
    check_label,
    markers_path,
    new_marker,
    parse_markers,
    read_markers,
)


def test_append_and_read_back_in_time_order(tmp_path: Path) -> None:
    late = new_marker("patient moved", SOURCE_API, at=datetime(2026, 11, 25, 9, 0, 5, tzinfo=UTC))
    early = new_marker("stimulus on", SOURCE_DASHBOARD, "alice", at=datetime(2026, 11, 25, 9, 0, 1, tzinfo=UTC))
    append_marker(tmp_path, late)
    append_marker(tmp_path, early)
    assert markers_path(tmp_path) == tmp_path / MARKERS_NAME
    assert read_markers(tmp_path) == [early, late]
    assert early.time == "2026-11-25T09:00:01.000000Z" and early.user == "alice" and late.user is None
    lines = (tmp_path / MARKERS_NAME).read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[-1] == b""  # two whole lines, newline-terminated


def test_no_file_means_no_markers(tmp_path: Path) -> None:
    assert read_markers(tmp_path) == []


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_fresh_line(tmp_path: Path) -> None:
    first = new_marker("one", SOURCE_API)
    append_marker(tmp_path, first)
    with open(markers_path(tmp_path), "ab") as f:
        f.write(b'{"id":"x","time":"2026-11-25T09:0')  # a crash mid-write
    assert read_markers(tmp_path) == [first]
    second = new_marker("two", SOURCE_API)
    append_marker(tmp_path, second)
    assert [m.label for m in read_markers(tmp_path)] == ["one", "two"]


def test_unreadable_lines_are_skipped_not_fatal() -> None:
    good = new_marker("ok", SOURCE_API)
    text = b"not json\n" + good.to_line() + b'{"id":"1","time":"yesterday","label":"x","source":"api"}\n'
    assert parse_markers(text) == [good]


def _append_many(folder: str, tag: str, n: int) -> None:
    for i in range(n):
        append_marker(Path(folder), new_marker(f"{tag} {i} " + "x" * 150, SOURCE_API))


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), tag, 100)) for tag in ("a", "b", "c")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = markers_path(tmp_path).read_bytes().splitlines()
    assert len(lines) == 300
    assert len(parse_markers(b"\n".join(lines))) == 300  # every line a whole record


@pytest.mark.parametrize(("label", "reason"), [
    ("", "empty"), ("   ", "empty"), ("x" * (MAX_LABEL + 1), "at most"), ("a\nb", "control"),
    ("tab\there", "control"), ("bell\x07", "control"), ("line\u2028sep", "control"), (42, "string"),
])
def test_bad_labels_are_refused_with_the_reason(label: object, reason: str) -> None:
    with pytest.raises(MarkerError, match=reason):
        check_label(label)


def test_a_good_label_is_trimmed_and_unicode_kept(tmp_path: Path) -> None:
    assert check_label("  stimulus on ") == "stimulus on"
    marker = new_marker("Reiz – an µV", SOURCE_DASHBOARD)
    append_marker(tmp_path, marker)
    assert read_markers(tmp_path)[0].label == "Reiz – an µV"
    assert Marker.from_dict(marker.to_dict()) == marker


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(MarkerError, match="source"):
        new_marker("x", "telepathy")
