"""`sensor-reader` refuses a data folder it cannot write with one line and exit 2, before opening the port."""

from __future__ import annotations

from pathlib import Path

from tests.support import one_line_error

READER = ("--port", "/dev/null", "--local")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = one_line_error("sensor-reader", *READER, "--data-dir", str(afile))
    assert line == f"sensor-reader: --data-dir / SENSOR_DATA_DIR: {afile} is not a directory"
    sub = one_line_error("sensor-reader", *READER, env={"SENSOR_DATA_DIR": str(afile / "sub")})
    assert f"{afile / 'sub'} cannot be created: {afile} is not a directory" in sub


def test_data_dir_under_proc() -> None:
    line = one_line_error("sensor-reader", *READER, "--data-dir", "/proc/sensor")
    assert line.startswith("sensor-reader: --data-dir / SENSOR_DATA_DIR: /proc/sensor is on the kernel's proc")


def test_data_dir_not_writable(read_only_dir: Path) -> None:
    line = one_line_error("sensor-reader", *READER, "--data-dir", str(read_only_dir / "data"))
    assert line.endswith(f"{read_only_dir / 'data'} cannot be created: {read_only_dir} is not writable")
