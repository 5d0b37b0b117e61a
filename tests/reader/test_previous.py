"""Where the device's counter stood when its latest session ended (the base of the next session's gap)."""

from __future__ import annotations

from pathlib import Path

from kernel.batch import batch_header
from kernel.layout import batch_filename
from kernel.manifest import SessionManifest
from reader.session import PreviousSession, previous_session


def _session(device: Path, name: str, reason: str, rows: range | None = None, **fields: object) -> None:
    folder = device / name
    folder.mkdir(parents=True)
    m = SessionManifest(device_id="d", session_id=name, port="p", baudrate=1, columns=["seq", "ch1"],
                        started_at="x", software_version="0", state="closed", end_reason=reason, **fields)
    m.save(folder)
    if rows is not None:
        body = b"".join(b"2026-01-01T00:00:00.000000Z,%d,0.5\n" % i for i in rows)
        (folder / batch_filename(1)).write_bytes(batch_header(["seq", "ch1"]) + body)


def test_last_committed_counter_after_a_crash(tmp_path):
    _session(tmp_path, "20260101T000000Z", "recovered", range(101))
    assert previous_session(tmp_path) == PreviousSession("20260101T000000Z", "recovered", 100)


def test_last_counter_read_after_a_normal_end(tmp_path):
    """Lines read after the last committed row (lost on a full disk) are already counted by that session."""
    _session(tmp_path, "20260101T000000Z", "stopped", range(101), last_seq=130, lost={"disk_full": 30})
    assert previous_session(tmp_path) == PreviousSession("20260101T000000Z", "stopped", 130)


def test_a_session_that_committed_nothing_passes_its_own_count_on(tmp_path):
    """Killed before its first write, after counting a gap of 5 itself: that gap is not counted again."""
    _session(tmp_path, "20260101T000000Z", "recovered", range(101))
    _session(tmp_path, "20260101T000000Z-2", "recovered", None, lost={"kill": 5})
    _session(tmp_path, "20260101T000000Z-10", "recovered", None)  # sorts after -2 (not as text)
    assert previous_session(tmp_path) == PreviousSession("20260101T000000Z-10", "recovered", 105)
