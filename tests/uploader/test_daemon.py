"""``sensor-uploader`` as a real process: systemd/foreground and detached daemon modes, lock, signals, crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from kernel.layout import committed_batches, is_touched
from kernel.manifest import SessionManifest
from kernel.status import read_statuses
from tests.fixtures.s3 import S3Server
from tests.uploader.daemon_helpers import NotifySocket, start, stop, uploader_args, uploader_env, wait_for
from tests.uploader.sessions import T0, add_batch, close_session, make_session


def expected_keys(*sessions: Path, ext: str = "parquet") -> set[str]:
    """Every object key a set of closed sessions must produce."""
    keys = set()
    for s in sessions:
        keys |= {
            f"box1/{s.parent.name}/{s.name}/{b.name.removesuffix('.csv')}.{ext}" for b in committed_batches(s)
        }
        keys.add(f"box1/{s.parent.name}/{s.name}/session.json")
        keys.add(f"box1/{s.parent.name}/{s.name}/envelope.parquet")  # the overview's data, put before the manifest
    return keys


def assert_consistent(server: S3Server, bucket: str, *sessions: Path) -> None:
    """Exactly the expected objects, each matching its local batch (manifest sha256 chain), all touched."""
    objects = server.objects(bucket)
    assert set(objects) == expected_keys(*sessions)
    for s in sessions:
        assert is_touched(s)
        doc = json.loads(objects[f"box1/{s.parent.name}/{s.name}/session.json"].read_bytes())
        import hashlib

        for entry, batch in zip(doc["batches"], committed_batches(s), strict=True):
            assert entry["sha256"] == hashlib.sha256(batch.read_bytes()).hexdigest()
            assert entry["object_sha256"] == hashlib.sha256(objects[entry["key"]].read_bytes()).hexdigest()


def test_systemd_mode_notify_lock_and_sigterm(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=3, rows=200)
    notify = NotifySocket(tmp_path / "notify.sock")
    env = uploader_env(s3_server, NOTIFY_SOCKET=str(notify.path), INVOCATION_ID="test-invocation")
    proc = start(uploader_args(s3_server, s3_bucket, data), env, tmp_path / "log1")
    try:
        notify.wait_for("READY=1", 30)
        wait_for(lambda: is_touched(sdir), 60, "the session to be uploaded and touched")
        notify.wait_for("WATCHDOG=1", 10)
        notify.wait_for("STATUS=idle: backlog 0 batches", 10)
        assert (data / ".uploader.pid").read_text().strip() == str(proc.pid)

        second = subprocess.run(
            uploader_args(s3_server, s3_bucket, data, "--foreground"),
            env=uploader_env(s3_server),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 3
        assert f"already running (pid {proc.pid}" in second.stderr
        assert proc.poll() is None, "the first instance keeps running"

        assert stop(proc) == 0
        notify.wait_for("STOPPING=1", 5)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    assert_consistent(s3_server, s3_bucket, sdir)
    assert not (data / ".uploader.pid").exists()
    log = (tmp_path / "log1").read_text()
    assert "sensor-uploader started" in log and "stopped on request" in log, "stderr is kept under systemd"
    assert read_statuses(data)["uploader"]["state"] == "stopped"


def test_detached_daemon_with_pidfile(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=2, rows=100)
    pidfile, logfile = tmp_path / "run" / "uploader.pid", tmp_path / "uploader.log"
    launcher = subprocess.run(
        uploader_args(s3_server, s3_bucket, data, "--pidfile", str(pidfile), "--log-file", str(logfile)),
        env=uploader_env(s3_server),
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert launcher.returncode == 0, launcher.stderr
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 20, "the daemon's pid"))
    assert pid != os.getpid()
    try:
        assert Path(f"/proc/{pid}").exists()
        assert os.getsid(pid) != os.getsid(0), "the daemon runs in a session of its own (detached)"
        wait_for(lambda: is_touched(sdir), 60, "the detached daemon to upload the session")
        refused = subprocess.run(
            uploader_args(s3_server, s3_bucket, data, "--pidfile", str(pidfile)),
            env=uploader_env(s3_server),
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 3 and "already running" in refused.stderr
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30, "the daemon to exit")
    finally:
        if Path(f"/proc/{pid}").exists() and not _zombie(pid):
            os.kill(pid, signal.SIGKILL)
    assert not pidfile.exists()
    log = logfile.read_text()
    assert "sensor-uploader started" in log and f"(pid {pid}, daemon)" in log and "stopped on request" in log
    assert_consistent(s3_server, s3_bucket, sdir)


def run_once(s3_server: S3Server, s3_bucket: str, data: Path) -> subprocess.CompletedProcess[str]:
    """``sensor-uploader --once`` as a child process (a restart after a crash or a stop)."""
    return subprocess.run(
        uploader_args(s3_server, s3_bucket, data, "--once"),
        env=uploader_env(s3_server),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _zombie(pid: int) -> bool:
    """True when the process is a zombie (exited, not yet reaped by its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_s3_outage_mid_run_then_everything_arrives_once(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = make_session(data, "dev1", T0, batches=24, rows=400, closed=False)
    log = tmp_path / "log"
    proc = start(
        uploader_args(
            s3_server,
            s3_bucket,
            data,
            "--foreground",
            "--chunk",
            "4",
            "--max-batches",
            "8",
            "--concurrency",
            "2",
            "--format",
            "csv",
        ),
        uploader_env(s3_server),
        log,
    )
    try:
        wait_for(lambda: len(s3_server.objects(s3_bucket)) >= 2, 60, "the first objects")
        s3_server.stop()
        wait_for(lambda: "S3 unreachable" in log.read_text(), 60, "the outage to be noticed")
        # During the outage: a new session is recorded and nothing local is deleted or touched.
        second = make_session(data, "dev2", T0 + timedelta(hours=1), batches=3, rows=100, closed=False)
        wait_for(
            lambda: read_statuses(data).get("uploader", {}).get("state") == "outage", 20, "status outage"
        )
        status = read_statuses(data)["uploader"]
        assert status["backlog_batches"] >= 3 and status["error"]
        assert len(committed_batches(first)) == 24 and not is_touched(first)
        s3_server.start()
        close_session(first)
        close_session(second)
        wait_for(lambda: is_touched(first) and is_touched(second), 90, "the backlog to drain after recovery")
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_consistent_ext(s3_server, s3_bucket, "csv", first, second)
    text = log.read_text()
    assert text.count("S3 unreachable") == 1, "an outage is logged once"
    assert text.count("S3 reachable again") == 1, "the recovery is logged once"
    assert "Traceback" not in text


def assert_consistent_ext(server: S3Server, bucket: str, ext: str, *sessions: Path) -> None:
    """Like assert_consistent, for csv objects: the object bytes are the batch bytes."""
    objects = server.objects(bucket)
    assert set(objects) == expected_keys(*sessions, ext=ext)
    for s in sessions:
        for b in committed_batches(s):
            assert (
                objects[f"box1/{s.parent.name}/{s.name}/{b.name.removesuffix('.csv')}.{ext}"].read_bytes()
                == b.read_bytes()
            )


def test_kill9_mid_upload_then_restart_completes(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=40, rows=1000, channels=8)
    proc = start(
        uploader_args(s3_server, s3_bucket, data, "--foreground", "--chunk", "4", "--concurrency", "2"),
        uploader_env(s3_server),
        tmp_path / "log1",
    )
    try:
        wait_for(lambda: len(s3_server.objects(s3_bucket)) >= 3, 60, "uploads to be under way")
        children = [
            int(c)
            for t in Path(f"/proc/{proc.pid}/task").iterdir()
            for c in (t / "children").read_text().split()
        ]
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not children, "the uploader works in one process: no child can outlive it"
    uploaded_before = len(s3_server.objects(s3_bucket))
    assert 0 < uploaded_before < 41 and not is_touched(sdir), "killed mid-upload"
    rerun = run_once(s3_server, s3_bucket, data)
    assert rerun.returncode == 0, rerun.stderr
    assert_consistent(s3_server, s3_bucket, sdir)
    assert SessionManifest.load(sdir).batches == 40


def test_progress_bar_on_a_terminal(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_session(data, "dev1", T0, batches=12, rows=100)
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            uploader_args(s3_server, s3_bucket, data, "--once", "--format", "csv"),
            env=uploader_env(s3_server),
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(master)
    text = out.decode(errors="replace")
    assert "12/12 batches" in text and "B/s" in text and "upload" in text


def test_hung_server_stops_the_watchdog(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=1, rows=100, closed=False)
    notify = NotifySocket(tmp_path / "notify.sock")
    env = uploader_env(s3_server, NOTIFY_SOCKET=str(notify.path))
    proc = start(
        uploader_args(s3_server, s3_bucket, data, "--read-timeout", "60", "--max-attempts", "1"),
        env,
        tmp_path / "log",
    )
    try:
        notify.wait_for("READY=1", 30)
        wait_for(lambda: (sdir / ".upload" / "batch-000001.json").exists(), 60, "the first batch")
        notify.wait_for("WATCHDOG=1", 10)
        s3_server.pause()
        add_batch(sdir, SessionManifest.load(sdir), 2, T0 + timedelta(seconds=1), 100, 1000.0)
        # The next pass hangs on the frozen server: once it has started, no WATCHDOG may follow.
        wait_for(
            lambda: read_statuses(data)["uploader"]["backlog_batches"] == 1, 10, "the pass to see the batch"
        )
        notify.drain()  # the watchdog of the iteration before the hung one may still be queued
        quiet_since = time.monotonic()
        got = []
        while time.monotonic() - quiet_since < 3:
            got += notify.drain(0.2)
        assert not [m for m in got if "WATCHDOG=1" in m], got
        s3_server.resume()
        wait_for(lambda: (sdir / ".upload" / "batch-000002.json").exists(), 60, "the upload after the hang")
        notify.wait_for("WATCHDOG=1", 10)
        assert stop(proc) == 0
    finally:
        s3_server.resume()
        if proc.poll() is None:
            proc.kill()
        notify.close()


def test_sigterm_mid_upload_exits_0_and_the_rest_follows(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=40, rows=1000, channels=8)
    log = tmp_path / "log"
    proc = start(
        uploader_args(s3_server, s3_bucket, data, "--foreground", "--chunk", "4", "--concurrency", "2"),
        uploader_env(s3_server),
        log,
    )
    try:
        wait_for(lambda: len(s3_server.objects(s3_bucket)) >= 3, 60, "uploads to be under way")
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "stopped on request" in text and "Traceback" not in text
    assert len(s3_server.objects(s3_bucket)) < 41 and not is_touched(sdir), "stopped before the end"
    for marker in (sdir / ".upload").glob("batch-??????.json"):  # every recorded upload is really there
        assert json.loads(marker.read_bytes())["key"] in s3_server.objects(s3_bucket)
    rerun = run_once(s3_server, s3_bucket, data)
    assert rerun.returncode == 0, rerun.stderr
    assert_consistent(s3_server, s3_bucket, sdir)
