"""Helpers for running ``sensor-uploader`` as a real process in tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.fixtures.s3 import S3Server
from tests.support import wait_for

__all__ = ["wait_for"]


def uploader_env(server: S3Server, **extra: str) -> dict[str, str]:
    """Environment of a child uploader: no systemd variables unless given, the server's credentials."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "NOTIFY_SOCKET", "WATCHDOG_USEC")
    }
    env.update(server.env())
    env.update(extra)
    return env


def uploader_args(server: S3Server, bucket: str, data_dir: Path, *extra: str) -> list[str]:
    """Command line of the uploader against the test server, with fast loop timings."""
    return [
        sys.executable,
        "-m",
        "uploader",
        "--data-dir",
        str(data_dir),
        "--bucket",
        bucket,
        "--endpoint-url",
        server.endpoint_url,
        "--box-id",
        "box1",
        "--interval",
        "0.2",
        "--workers",
        "1",
        "--backoff-max",
        "1",
        "--fatal-retry",
        "1",
        "--connect-timeout",
        "2",
        "--read-timeout",
        "10",
        "--max-attempts",
        "2",
        *extra,
    ]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start the uploader with stderr to a log file."""
    with open(log, "ab") as f:
        return subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM and wait; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
    return proc.wait(timeout=timeout)


class NotifySocket:
    """A NOTIFY_SOCKET stand-in: the datagram socket systemd listens on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def drain(self, timeout: float = 0.0) -> list[str]:
        """Receive what arrived (waiting up to ``timeout`` for the first message)."""
        got = []
        self.sock.settimeout(timeout if timeout > 0 else 0.001)
        while True:
            try:
                got.append(self.sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                break
            self.sock.settimeout(0.001)
        self.messages.extend(got)
        return got

    def wait_for(self, text: str, timeout: float) -> None:
        """Wait until a message containing ``text`` arrives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in m for m in self.drain(0.1)):
                return
        raise AssertionError(f"no {text!r} from the uploader in {timeout}s; got {self.messages[-5:]}")

    def close(self) -> None:
        """Close and remove the socket."""
        self.sock.close()
        self.path.unlink(missing_ok=True)
