"""kill -9 of ``sensor-uploader`` at several moments: it runs as one process, so nothing outlives it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from kernel.status import read_statuses, uploader_status
from tests.fixtures.s3 import S3Server
from tests.uploader.daemon_helpers import start, uploader_args, uploader_env, wait_for
from tests.uploader.sessions import T0, make_session

TAG = "SENSOR_TEST_PROCESS_TAG"


def tagged(tag: str) -> set[int]:
    """Live (not zombie) processes whose environment carries ``TAG=tag``: the uploader and its descendants."""
    needle = f"{TAG}={tag}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if state != "Z":
            found.add(int(entry.name))
    return found


def _started(pid: int, data: Path, server: S3Server, bucket: str) -> bool:
    """The daemon has warmed up (client, pool, imports) and published its first status."""
    return uploader_status(read_statuses(data)) is not None


def _first_processed(pid: int, data: Path, server: S3Server, bucket: str) -> bool:
    return any(data.glob("*/*/.upload/*.stats.json"))


def _first_uploaded(pid: int, data: Path, server: S3Server, bucket: str) -> bool:
    return bool(server.objects(bucket))


MOMENTS: dict[str, Callable[[int, Path, S3Server, str], bool]] = {
    "start-up done": _started,
    "first batch processed": _first_processed,
    "first object uploaded": _first_uploaded,
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_no_child_outlives_a_killed_uploader(
    moment: str, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    make_session(data, "dev1", T0, batches=24, rows=2000, channels=8)
    tag = uuid.uuid4().hex
    proc = start(
        uploader_args(s3_server, s3_bucket, data, "--foreground", "--chunk", "4", "--workers", "2"),
        uploader_env(s3_server, **{TAG: tag}),
        tmp_path / "log",
    )
    try:
        reached = MOMENTS[moment]
        wait_for(lambda: reached(proc.pid, data, s3_server, s3_bucket) or proc.poll() is not None, 60, moment)
        assert proc.poll() is None, (tmp_path / "log").read_text()
        assert tagged(tag) == {proc.pid}, "processing and uploads run inside the uploader's own process"
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not tagged(tag)
