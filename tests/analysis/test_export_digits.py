"""CSV exports keep the device's digits: ``-0.1930`` stays ``-0.1930``, from disk and from every upload format."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path

import pytest

from analysis.cli import main
from kernel.layout import committed_batches
from tests.analysis.uploads import upload
from tests.fixtures.s3 import S3Server


def batch_text(session: Path) -> bytes:
    """The session's batches as one batch file: the first header, then every row as the device sent it."""
    parts = [b.read_bytes() for b in committed_batches(session)]
    return parts[0] + b"".join(p.split(b"\n", 1)[1] for p in parts[1:])


def without_sample_time(export: bytes) -> bytes:
    """An export's text without its ``sample_time`` column (these batches predate the sample clock)."""
    lines = export.split(b"\n")
    assert lines[0].split(b",")[:2] == [b"host_time", b"sample_time"]
    return b"\n".join(b",".join(f for i, f in enumerate(line.split(b",")) if i != 1) for line in lines)


def same_text(got: bytes, want: bytes) -> bool:
    """Equal bytes; on a difference, the first differing line is printed (a full diff takes minutes)."""
    if got != want:
        bad = next((i, a, b) for i, (a, b) in enumerate(zip_longest(got.split(b"\n"), want.split(b"\n"))) if a != b)
        print(f"line {bad[0]}: got {bad[1]!r}, want {bad[2]!r}")
    return got == want


@pytest.fixture(scope="module")
def uploaded(s3: S3Server, digits: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The digits session uploaded by the real uploader as Parquet and as csv.gz."""
    bucket = s3.create_bucket("digits")
    work = tmp_path_factory.mktemp("digits-uploads")
    return {
        form: upload(s3, bucket, [digits], work, prefix="d", box=f"box-{form}", form=form)[0]
        for form in ("parquet", "csv.gz")
    }


def test_the_fixture_prints_trailing_zeros(digits: Path) -> None:
    assert b",-0.1930," in batch_text(digits) or b",0.1000," in batch_text(digits)


def test_csv_export_from_disk_is_the_devices_text(digits: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert main(["export", str(digits), "--format", "csv", "--out", str(out), "--no-progress"]) == 0
    assert same_text(without_sample_time(out.read_bytes()), batch_text(digits))


@pytest.mark.parametrize("form", ["parquet", "csv.gz"])
def test_csv_export_from_s3_is_the_devices_text(
    s3: S3Server, digits: Path, uploaded: dict[str, str], tmp_path: Path, form: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out.csv"
    argv = ["export", uploaded[form], "--endpoint-url", s3.endpoint_url, "--format", "csv", "--out", str(out)]
    assert main(argv) == 0
    assert same_text(without_sample_time(out.read_bytes()), batch_text(digits))


def test_a_window_keeps_the_digits_too(digits: Path, tmp_path: Path) -> None:
    out = tmp_path / "window.csv"
    argv = ["export", str(digits), "--format", "csv", "--out", str(out), "--start", "9.5s", "--duration", "1s"]
    assert main(argv) == 0
    lines = batch_text(digits).split(b"\n")
    rows = without_sample_time(out.read_bytes()).split(b"\n")
    assert len(rows) == 502 and rows[1] in lines and rows[-2] in lines  # header, 500 rows, final newline
