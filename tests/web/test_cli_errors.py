"""`sensor-web` refuses a database folder it cannot create with one line and exit 2."""

from __future__ import annotations

from pathlib import Path

from tests.support import one_line_error


def test_state_dir_that_is_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = one_line_error("sensor-web", "migrate", env={"SENSOR_WEB_DEV": "1", "SENSOR_WEB_STATE_DIR": str(afile)})
    assert line == f"sensor-web: configuration error: SENSOR_WEB_DB / SENSOR_WEB_STATE_DIR: {afile} is not a directory"


def test_database_under_proc() -> None:
    line = one_line_error("sensor-web", "migrate", env={"SENSOR_WEB_DEV": "1", "SENSOR_WEB_DB": "/proc/web.sqlite3"})
    assert "/proc is on the kernel's proc filesystem" in line
