"""`make demo` as a user runs it: Ctrl-C leaves a complete, touched S3 copy; a taken port is refused up front."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from devtools import demo
from kernel.layout import batch_stem, committed_batches, is_touched, session_dirs
from kernel.manifest import SessionManifest
from kernel.objects import manifest_key, object_key, parse_batch_object
from tests.fixtures.s3 import S3Server
from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Output:
    """A child's stdout+stderr, collected line by line in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._thread = threading.Thread(target=lambda: self.lines.extend(proc.stdout or ()), daemon=True)
        self._thread.start()

    def close(self, proc: subprocess.Popen[str]) -> None:
        """After the child exited: read the rest and close the pipe."""
        self._thread.join(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def text(self) -> str:
        """Everything read so far."""
        return "".join(self.lines)


def demo_env() -> dict[str, str]:
    """The demo's environment: this tree first, no systemd variables."""
    env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "NOTIFY_SOCKET", "WATCHDOG_USEC")}
    return {**env, "PYTHONPATH": str(ROOT)}


def start_demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m devtools.demo` with short batches, its output piped."""
    return subprocess.Popen([sys.executable, "-m", "devtools.demo", "--dir", str(tmp_path / "demo"), *args],
                            cwd=ROOT, env=demo_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def test_ctrl_c_leaves_a_complete_touched_s3_copy(tmp_path: Path) -> None:
    proc = start_demo(tmp_path, "--web-port", "0", "--batch-seconds", "1", "--rate", "100", "--channels", "2")
    out = Output(proc)
    try:
        wait_for(lambda: "sensor-analysis" in out.text or proc.poll() is not None, 120, "the demo's banner")
        found = re.search(r"endpoint (\S+) +bucket (\S+)\s+access key (\S+) +secret (\S+)", out.text)
        assert found, out.text
        endpoint, bucket, key, secret = found.groups()
        server = S3Server(root=tmp_path / "demo" / "s3", port=int(endpoint.rsplit(":", 1)[1]), access_key=key,
                          secret_key=secret, log_path=tmp_path / "unused.log")

        def batch_objects() -> list[str]:
            listing = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
            return [o["Key"] for o in listing if parse_batch_object(o["Key"])]

        wait_for(lambda: len(batch_objects()) >= 3, 120, "three batches in the demo's S3", interval=0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, out.text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close(proc)

    data = tmp_path / "demo" / "data"
    (session,) = session_dirs(data)
    objects = {p.relative_to(server.root / bucket).as_posix() for p in (server.root / bucket).rglob("*")
               if p.is_file() and not p.name.startswith(".rclone")}
    prefix = object_key("", demo.BOX_ID, demo.DEVICE_ID, session.name)
    uploaded = {parse_batch_object(k)[0] for k in objects if k.startswith(prefix + "/") and parse_batch_object(k)}
    on_disk = {batch_stem(b) for b in committed_batches(session)}
    assert len(on_disk) >= 3 and uploaded == on_disk, "every committed batch, the last one too, is in S3"
    assert manifest_key(prefix) in objects and SessionManifest.load(session).closed
    assert is_touched(session)
    assert "every session is in S3 and marked touched" in out.text

    # The printed command works against the S3 copy, served again after the demo.
    command = next(line for line in out.text.splitlines() if " summary s3://" in line)
    server.port = free_port()
    server.start()
    try:
        argv = shlex.split(command.replace(endpoint, server.endpoint_url))
        env = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("s3:"))
        done = subprocess.run([a for a in argv if a not in {f"{k}={v}" for k, v in env.items()}],
                              env={**demo_env(), **env}, capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.stop()
    assert done.returncode == 0 and "rate_hz" in done.stdout, done.stderr


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = start_demo(tmp_path, "--web-port", str(port))
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert output.strip() == (f"demo: --web-port {port}: port {port} is in use; choose another (make demo PORT=N), "
                              "or 0 for any free port")
    assert not (tmp_path / "demo").exists()


def test_the_default_port_moves_aside_when_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(demo, "DEFAULT_WEB_PORT", taken)
        port, note = demo.choose_web_port(None)
    assert port != taken and note == f"port {taken} is in use: the dashboard uses port {port} instead"
