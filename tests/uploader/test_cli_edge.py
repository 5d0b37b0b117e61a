"""`sensor-uploader` at its edge: a bad data folder is one line and exit 2; the daemon says where it went."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from kernel.layout import uploader_log_path, uploader_pid_path
from tests.fixtures.s3 import S3Server
from tests.support import one_line_error, wait_for

UPLOADER = Path(sys.executable).parent / "sensor-uploader"


def test_data_dir_that_is_a_file_or_under_proc(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    line = one_line_error("sensor-uploader", "--once", "--bucket", "b-1", "--data-dir", str(afile))
    assert line == f"sensor-uploader: --data-dir / SENSOR_DATA_DIR: {afile} is not a directory"
    line = one_line_error("sensor-uploader", "--once", "--bucket", "b-1", env={"SENSOR_DATA_DIR": "/proc/data"})
    assert "/proc/data is on the kernel's proc filesystem" in line


def test_daemon_names_its_pid_file_and_log(s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "NOTIFY_SOCKET", "WATCHDOG_USEC")}
    launcher = subprocess.run(
        [str(UPLOADER), "--data-dir", str(data), "--bucket", s3_bucket, "--endpoint-url", s3_server.endpoint_url,
         "--workers", "1"],
        env={**env, **s3_server.env()}, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        check=False)
    assert launcher.returncode == 0, launcher.stderr
    pidfile, logfile = uploader_pid_path(data), uploader_log_path(data)
    assert launcher.stdout.strip() == (f"sensor-uploader: detaching; pid in {pidfile} (stop with: kill $(cat "
                                       f"{pidfile})), log in {logfile}")
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 20, "the daemon's pid"))
    try:
        wait_for(lambda: logfile.exists() and f"(pid {pid}, daemon)" in logfile.read_text(), 20, "its log")
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pidfile.exists(), 30, "the daemon to stop and remove its pid file")
