"""Real servers the web tests drive as subprocesses: Debian's Prometheus and Redis, and the box's own services."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, stop_process, wait_for

from .conftest import TOKEN, VENV_BIN


def debian_binary(path: str, package: str) -> str:
    """A binary of a Debian package; a clear failure naming the package when it is missing."""
    if not Path(path).exists():
        pytest.fail(f"{path} is missing: apt-get install {package} (make system-deps installs it)")
    return path


class Process:
    """A subprocess with its output in a log file; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def output(self) -> str:
        """What it logged so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while it runs; an AssertionError with its log once it has died."""
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.proc.args[0]} exited {self.proc.returncode}:\n{self.output()[-3000:]}")
        return True

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        stop_process(self.proc)
        return self.proc.returncode


def service_env(**extra: str) -> dict[str, str]:
    """This environment without SENSOR_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def start_reader(port: Path, data_dir: Path, ws_url: str, log_path: Path) -> Process:
    """sensor-reader recording ``port`` into ``data_dir`` (1 s batches) and streaming to sensor-web."""
    return Process([str(VENV_BIN / "sensor-reader"), "--port", str(port), "--data-dir", str(data_dir), "--seq",
                    "--batch-seconds", "1"], log_path,
                   service_env(SENSOR_INGEST_TOKEN=TOKEN, SENSOR_WS_URL=f"{ws_url}/ws/ingest/"))


@contextlib.contextmanager
def running(process: Process) -> Iterator[Process]:
    """Stop the process on leaving."""
    try:
        yield process
    finally:
        process.stop()


class Prometheus(Process):
    """Debian's Prometheus server on a free loopback port, its storage in a temporary folder."""

    def __init__(self, config: dict[str, Any], folder: Path) -> None:
        binary = debian_binary("/usr/bin/prometheus", "prometheus")
        folder.mkdir(parents=True, exist_ok=True)
        config_path = folder / "prometheus.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        self.url = f"http://127.0.0.1:{free_port()}"
        super().__init__([binary, f"--config.file={config_path}", f"--storage.tsdb.path={folder / 'tsdb'}",
                          f"--web.listen-address={self.url.removeprefix('http://')}", "--log.level=warn"],
                         folder / "prometheus.log")
        wait_for(lambda: self.alive() and self._ready(), 60, "Prometheus to be ready", interval=0.1)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET an HTTP API path (``/api/v1/...``); its ``data``."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def targets(self) -> dict[str, dict[str, Any]]:
        """The active targets by job name (one target per job here)."""
        return {t["labels"]["job"]: t for t in self.api("/api/v1/targets", state="active")["activeTargets"]}


class Redis(Process):
    """Debian's redis-server on a loopback port (a free one unless given), without persistence."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        binary = debian_binary("/usr/bin/redis-server", "redis-server")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        super().__init__([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(folder)], folder / "redis.log")
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"

        def pong() -> bool:
            self.alive()
            done = subprocess.run([cli, "-p", str(self.port), "ping"], capture_output=True, text=True, check=False)
            return done.stdout.strip() == "PONG"

        wait_for(pong, 30, "redis-server to answer", interval=0.05)

    def restart(self) -> Redis:
        """Stop, and start a new server on the same port: it has forgotten everything (no persistence)."""
        self.stop()
        return Redis(self.folder, self.port)
