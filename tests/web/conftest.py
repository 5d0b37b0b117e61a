"""Fixtures for the web tests: Django configured in-process, and a real sensor-web server as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import free_port, stop_process, wait_for

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
VENDOR = REPO / "web" / "static" / "vendor" / "uplot" / "uPlot.iife.min.js"
TOKEN = "test-ingest-token-0123456789"


def _setup_django() -> None:
    """Configure Django once for in-process tests (random key, throwaway database), without leaking env."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")
    saved = {k: os.environ.get(k) for k in ("SENSOR_WEB_DEV", "SENSOR_WEB_DB")}
    os.environ["SENSOR_WEB_DEV"] = "1"
    os.environ["SENSOR_WEB_DB"] = str(Path(tempfile.mkdtemp(prefix="sensor-web-test-")) / "db.sqlite3")
    try:
        import django

        django.setup()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_setup_django()


def require_assets() -> None:
    """The dashboard needs the vendored uPlot (`make web-assets`)."""
    if not VENDOR.exists():
        pytest.fail(f"{VENDOR} is missing: run `make web-assets` (npm ci + npm run build in web/frontend)")


class WebServer:
    """A running `sensor-web` subprocess on a free loopback port."""

    def __init__(self, env: dict[str, str], data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = env
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed by stop()
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(VENV_BIN / "sensor-web"), "--bind", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)

    def restart(self) -> None:
        """Stop (SIGTERM, must exit 0) and start again on the same port, data dir and database."""
        code = self.stop()
        assert code == 0, f"sensor-web exited {code}:\n{self.output()}"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed by stop()
        self.proc = self._spawn()
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the port accepts connections (or the process died)."""
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"sensor-web exited {self.proc.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, timeout, "sensor-web to listen")

    def output(self) -> str:
        """What the server logged so far."""
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        stop_process(self.proc)
        self.log.close()
        return self.proc.returncode


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean production-like environment for sensor-web (no inherited SENSOR_* settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENSOR_", "DJANGO_"))}
    env.update({
        "SENSOR_WEB_SECRET_KEY": "k" * 10 + "production-like-secret-key-for-tests-0123456789",
        "SENSOR_INGEST_TOKEN": TOKEN,
        "SENSOR_DATA_DIR": str(data_dir),
        "SENSOR_WEB_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",
    })
    env.update(extra)
    return env


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[Callable[..., WebServer]]:
    """Factory: start sensor-web with extra env settings; every server is stopped (and must exit 0)."""
    started: list[WebServer] = []

    def start(**extra: str) -> WebServer:
        data_dir = tmp_path / f"data{len(started)}"
        data_dir.mkdir()
        server = WebServer(server_env(data_dir, **extra), data_dir, tmp_path / f"web{len(started)}.log")
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        code = server.stop()
        assert code == 0, f"sensor-web exited {code}:\n{server.output()}"
