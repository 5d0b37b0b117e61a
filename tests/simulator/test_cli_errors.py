"""`sensor-sim` refuses a link (or record/control file) whose folder is missing, and creates no folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import one_line_error


@pytest.mark.parametrize("flag", ["--link", "--record", "--control"])
def test_missing_folder_is_an_error_and_not_created(tmp_path: Path, flag: str) -> None:
    missing = tmp_path / "missing" / "deeper"
    args = ["--link", str(tmp_path / "sim0"), "--duration", "0"]
    args += [flag, str(missing / "name")] if flag != "--link" else ["--link", str(missing / "name")]
    line = one_line_error("sensor-sim", *args)
    assert line.startswith("sensor-sim: error:") and f"folder {missing} does not exist" in line and flag in line
    assert not (tmp_path / "missing").exists()
    assert not (tmp_path / "sim0").exists(), "nothing was started"


def test_link_under_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert one_line_error("sensor-sim", "--link", str(afile / "sim0")).endswith(f"{afile} is not a directory")
