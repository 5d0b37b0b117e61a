"""Settings: environment with CLI overrides, validated once with clear messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from uploader.cli import build_parser
from uploader.errors import SettingsError
from uploader.settings import from_sources, parse_size


def settings(argv: list[str], env: dict[str, str]):
    """Parse argv + env like the entry point does."""
    return from_sources(build_parser().parse_args(argv), env)


def test_environment_with_cli_overrides(tmp_path: Path) -> None:
    env = {
        "SENSOR_DATA_DIR": str(tmp_path),
        "SENSOR_S3_BUCKET": "from-env",
        "SENSOR_S3_PREFIX": "/lab/a/",
        "SENSOR_UPLOAD_FORMAT": "csv.gz",
        "SENSOR_QUOTA_BYTES": "2G",
        "SENSOR_EVICT_UNUPLOADED": "1",
        "SENSOR_BOX_ID": "box 7",
        "SENSOR_UPLOAD_INTERVAL": "2.5",
    }
    s = settings(["--bucket", "from-cli", "--format", "parquet"], env)
    assert s.bucket == "from-cli" and s.upload_format == "parquet"  # CLI wins
    assert s.prefix == "lab/a" and s.quota_bytes == 2 * 1024**3 and s.evict_unuploaded is True
    assert s.box_id == "box_7" and s.interval == 2.5 and s.data_dir == tmp_path
    assert s.lock_path == tmp_path / ".uploader.pid"
    assert settings(["--data-dir", str(tmp_path), "--bucket", "b-1"], {}).box_id  # default: hostname


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--data-dir DIR or SENSOR_DATA_DIR"),
        (["--data-dir", "/tmp"], "--bucket NAME or SENSOR_S3_BUCKET"),
        (["--data-dir", "/tmp", "--bucket", "Bad_Bucket"], "not a valid S3 bucket name"),
        (["--data-dir", "/tmp", "--bucket", "ok-b", "--format", "xml"], "choose one of parquet, csv.gz, csv"),
        (["--data-dir", "/tmp", "--bucket", "ok-b", "--interval", "soon"], "--interval"),
        (["--data-dir", "/tmp", "--bucket", "ok-b", "--quota-low", "95"], "low (95.0) < high (90.0)"),
        (["--data-dir", "/tmp", "--bucket", "ok-b", "--quota-bytes", "lots"], "--quota-bytes: not a size"),
        (["--data-dir", "/tmp", "--bucket", "ok-b", "--endpoint-url", "ftp://x"], "is not an http(s) URL"),
        (
            ["--data-dir", "/tmp", "--bucket", "ok-b", "--concurrency", "0"],
            "SENSOR_UPLOAD_CONCURRENCY: must be >= 1",
        ),
        (
            ["--data-dir", "/tmp", "--bucket", "ok-b", "--workers", "0"],
            "--workers / SENSOR_UPLOAD_WORKERS: must be >= 1",
        ),
    ],
)
def test_invalid_settings_are_explained(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=None) as info:
        settings(argv, {})
    assert message in str(info.value)


def test_cleanup_only_needs_no_bucket(tmp_path: Path) -> None:
    assert settings(["--cleanup-only", "--data-dir", str(tmp_path)], {}).cleanup_only


def test_parse_size() -> None:
    assert (
        parse_size("8388608") == 8388608
        and parse_size("512M") == 512 * 1024**2
        and parse_size("1.5GiB") == 1610612736
    )


def test_cli_reports_bad_settings_and_helps() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "uploader", "--data-dir", "/tmp"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 2 and "sensor-uploader: the bucket is required" in bad.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "uploader", "--help"], check=False, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0
    for text in ("--cleanup-only", "SENSOR_QUOTA_HIGH_PERCENT", "SENSOR_EVICT_UNUPLOADED", "exit codes"):
        assert text in helped.stdout
