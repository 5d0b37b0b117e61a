"""Disk-quota cleanup on a real, small tmpfs: only touched sessions go, oldest first; alarm when full of un-uploaded."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from kernel.atomic import write_atomic
from kernel.layout import TOUCHED_NAME, is_touched, session_dirs
from kernel.status import read_statuses
from tests.fixtures.s3 import S3Server
from tests.uploader.daemon_helpers import uploader_args, uploader_env
from tests.uploader.sessions import T0, make_session
from uploader.quota import enforce, usage
from uploader.settings import Settings, validate

pytestmark = pytest.mark.root


@pytest.fixture
def tmpfs(tmpfs_factory) -> Path:
    """An 8 MiB tmpfs mounted for the test (we are root), unmounted at teardown."""
    return tmpfs_factory("8m")


def touched(sdir: Path) -> Path:
    """Mark a session as uploaded the way the uploader does (the format's marker)."""
    write_atomic(sdir / TOUCHED_NAME, json.dumps({"manifest_key": "test"}).encode())
    return sdir


def cleanup_cli(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``sensor-uploader --cleanup-only`` (what the systemd timer runs)."""
    return subprocess.run(
        [sys.executable, "-m", "uploader", "--cleanup-only", "--data-dir", str(data), *extra],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cleanup_deletes_only_touched_sessions_oldest_first(tmpfs: Path) -> None:
    data = tmpfs / "data"
    big = {"batches": 3, "rows": 4000, "channels": 4}
    # Start times interleave across devices, so path order is not age order.
    s_2h = touched(make_session(data, "devA", T0 + timedelta(hours=2), **big))
    s_0h = touched(make_session(data, "devB", T0, **big))
    s_1h = touched(make_session(data, "devA", T0 + timedelta(hours=1), **big))
    s_3h = touched(make_session(data, "devB", T0 + timedelta(hours=3), **big))
    not_uploaded = make_session(data, "devC", T0 - timedelta(hours=5), **big)  # oldest of all, not uploaded
    recording = make_session(data, "devC", T0 + timedelta(hours=4), closed=False, **big)
    used, total = usage(validate(Settings(data_dir=data, cleanup_only=True)))
    assert used / total > 0.5, "the tmpfs is filled enough to need cleanup"

    result = cleanup_cli(data, "--quota-high", "40", "--quota-low", "35")
    assert result.returncode == 0, result.stderr
    remaining = set(session_dirs(data))
    by_age = [s_0h, s_1h, s_2h, s_3h]
    gone = [s for s in by_age if s not in remaining]
    assert gone and gone == by_age[: len(gone)], "touched sessions are deleted oldest first"
    assert len(gone) < 4, "deletion stops at the low watermark"
    assert not_uploaded in remaining and recording in remaining
    quota = read_statuses(data)["uploader"]["quota"]
    assert quota["alarm"] is False and quota["used_bytes"] <= 0.35 * quota["total_bytes"]
    assert quota["total_bytes"] == 8 * 1024 * 1024
    assert not list(data.rglob(".evicting-*"))


def test_alarm_when_unuploaded_data_fills_the_disk(tmpfs: Path) -> None:
    data = tmpfs / "data"
    big = {"batches": 3, "rows": 4000, "channels": 4}
    old = make_session(data, "dev1", T0, **big)
    newer = make_session(data, "dev1", T0 + timedelta(hours=1), **big)
    recording = make_session(data, "dev2", T0 - timedelta(hours=1), closed=False, **big)
    result = cleanup_cli(data, "--quota-high", "5", "--quota-low", "2")
    assert result.returncode == 4
    assert "CRITICAL" in result.stderr and "DISK QUOTA ALARM" in result.stderr
    quota = read_statuses(data)["uploader"]["quota"]
    assert quota["alarm"] is True and "not yet uploaded" in quota["message"]
    assert set(session_dirs(data)) == {old, newer, recording}, "nothing un-uploaded is deleted by default"

    # Explicitly allowed: closed un-uploaded sessions go, oldest first; the open one never.
    settings = validate(
        Settings(data_dir=data, cleanup_only=True, quota_high=5, quota_low=2, evict_unuploaded=True)
    )
    report = enforce(settings)
    assert report.evicted == (f"dev1/{old.name}", f"dev1/{newer.name}")
    assert set(session_dirs(data)) == {recording}
    assert report.alarm and "open sessions are never deleted" in report.message, (
        "the open session alone: alarm"
    )


def test_daemon_uploads_then_evicts_on_a_small_disk(s3_server: S3Server, s3_bucket: str, tmpfs: Path) -> None:
    data = tmpfs / "data"
    big = {"batches": 3, "rows": 4000, "channels": 4}
    first = make_session(data, "dev1", T0, **big)
    second = make_session(data, "dev1", T0 + timedelta(hours=1), **big)
    result = subprocess.run(
        uploader_args(
            s3_server, s3_bucket, data, "--once", "--format", "csv", "--quota-high", "15", "--quota-low", "10"
        ),
        env=uploader_env(s3_server),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    keys = set(s3_server.objects(s3_bucket))
    for sdir in (first, second):
        assert (
            f"box1/dev1/{sdir.name}/session.json" in keys
            and f"box1/dev1/{sdir.name}/batch-000003.csv" in keys
        )
    assert not first.exists(), "the oldest uploaded session was evicted after its upload was verified"
    assert second.exists() and is_touched(second), "eviction stops at the low watermark"
    assert read_statuses(data)["uploader"]["quota"]["alarm"] is False


def test_byte_quota_mode(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a = touched(make_session(data, "dev1", T0, batches=2, rows=2000))
    b = touched(make_session(data, "dev1", T0 + timedelta(hours=1), batches=2, rows=2000))
    one = sum(f.stat().st_size for f in a.rglob("*") if f.is_file())
    settings = validate(
        Settings(data_dir=data, cleanup_only=True, quota_bytes=int(one * 2.5), quota_high=70, quota_low=50)
    )
    report = enforce(settings)
    assert report.evicted == (f"dev1/{a.name}",) and b.exists() and not report.alarm
