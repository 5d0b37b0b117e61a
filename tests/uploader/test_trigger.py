"""A committed batch wakes the idle uploader (inotify) long before its poll interval would."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from pathlib import Path

from kernel.atomic import write_atomic
from kernel.layout import batch_filename
from kernel.manifest import SessionManifest
from kernel.status import read_statuses, uploader_status
from kernel.upload_state import UploadedMarker
from tests.fixtures.s3 import S3Server
from tests.uploader.daemon_helpers import start, stop, uploader_args, uploader_env, wait_for
from tests.uploader.sessions import T0, add_batch, make_session
from uploader.trigger import BatchTrigger

NEVER = "3600"  # a poll interval no test outlives: only the trigger can start a pass


def verified(server: S3Server, bucket: str, batch: Path) -> bool:
    """The batch's object is in the bucket, matching the verified marker the uploader wrote."""
    marker = UploadedMarker.load(batch)
    if marker is None:
        return False
    obj = server.objects(bucket).get(marker.key)
    return obj is not None and hashlib.sha256(obj.read_bytes()).hexdigest() == marker.object_sha256


def idle(data: Path) -> bool:
    """The uploader published that it is idle with nothing pending (its next wait is the long interval)."""
    status = uploader_status(read_statuses(data))
    return status is not None and status.state == "idle" and status.backlog_batches == 0


def next_batch(sdir: Path) -> Path:
    """Commit the session's next batch as the reader does (atomic rename into the session folder)."""
    manifest = SessionManifest.load(sdir)
    index = manifest.batches + 1
    return add_batch(sdir, manifest, index, T0 + timedelta(seconds=index), 100, 1000.0)


def test_idle_daemon_uploads_a_committed_batch_and_new_folders(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = make_session(data, "dev1", T0, batches=1, rows=100, closed=False)
    args = uploader_args(s3_server, s3_bucket, data, "--foreground", "--interval", NEVER)
    proc = start(args, uploader_env(s3_server), tmp_path / "log")
    try:
        wait_for(lambda: verified(s3_server, s3_bucket, first / batch_filename(1)), 60, "the start-up pass")
        wait_for(lambda: idle(data), 30, "the uploader to be idle")

        batch = next_batch(first)
        wait_for(lambda: verified(s3_server, s3_bucket, batch), 30, "the committed batch to be uploaded")

        later = make_session(data, "dev1", T0 + timedelta(hours=1), batches=1, rows=100, closed=False)
        wait_for(lambda: verified(s3_server, s3_bucket, later / batch_filename(1)), 30, "a new session")
        batch = next_batch(later)  # the new session folder is watched itself, not just seen once
        wait_for(lambda: verified(s3_server, s3_bucket, batch), 30, "a batch of the new session")

        device = make_session(data, "dev2", T0, batches=1, rows=100, closed=False)
        wait_for(lambda: verified(s3_server, s3_bucket, device / batch_filename(1)), 30, "a new device")
        assert proc.poll() is None
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "log").read_text()
    assert "(inotify); polling every 3600 s as a fallback" in log


def test_trigger_fires_on_commit_and_on_stop(tmp_path: Path) -> None:
    session = tmp_path / "dev1" / "s1"
    session.mkdir(parents=True)
    stop_event = threading.Event()
    trigger = BatchTrigger(tmp_path, stop_event, interval=3600)
    assert trigger.start()
    try:
        assert trigger.watched == 3  # data dir, device, session
        write_atomic(session / batch_filename(1), b"x\n")
        assert trigger.wait(30), "a commit fires the trigger"
        (tmp_path / "dev2" / "s1").mkdir(parents=True)
        assert trigger.wait(30), "a new folder fires it (it may already hold batches)"
        wait_for(lambda: trigger.watched == 5, 30, "the new device and session to be watched")
        stop_event.set()
        assert trigger.wait(30), "a stop wakes the wait"
    finally:
        trigger.close()
