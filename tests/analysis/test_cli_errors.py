"""`sensor-analysis` refuses an output it cannot write, or a file it cannot read, with one line and exit 2."""

from __future__ import annotations

from pathlib import Path

from tests.support import one_line_error


def test_out_it_cannot_write(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = one_line_error("sensor-analysis", "plot", str(tmp_path), "--out", str(afile / "fig.png"))
    assert line == f"sensor-analysis: error: --out: cannot write {afile / 'fig.png'}: {afile} is not a directory"
    line = one_line_error("sensor-analysis", "export", str(tmp_path), "--out", str(tmp_path))
    assert line == f"sensor-analysis: error: --out: {tmp_path} is a directory, not a file"
    assert "proc filesystem" in one_line_error("sensor-analysis", "plot", str(tmp_path), "--out", "/proc/fig.png")


def test_missing_source() -> None:
    line = one_line_error("sensor-analysis", "summary", "/nonexistent/session")
    assert line.startswith("sensor-analysis: error: /nonexistent/session:")
