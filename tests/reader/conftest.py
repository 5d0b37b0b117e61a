"""Fixtures for reader tests: a real sensor-reader process, its log, and what it wrote."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.batch import read_batch_rows
from kernel.layout import committed_batches, status_path
from kernel.manifest import SessionManifest
from tests.support import wait_for

__all__ = ["ReaderProcess", "device_lines", "reader_status", "recorded_rows", "sessions", "wait_for"]

READER = str(Path(sys.executable).with_name("sensor-reader"))


class ReaderProcess:
    """A sensor-reader subprocess with its stderr collected line by line (wait on log lines, not sleeps)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen([READER, *args], env=full_env, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        self.proc.stderr.close()
        with self._cond:
            self._cond.notify_all()

    @property
    def log(self) -> str:
        """Everything logged so far."""
        with self._cond:
            return "\n".join(self.lines)

    def wait_log(self, pattern: str, timeout: float = 20.0, count: int = 1) -> str:
        """Wait until ``count`` log lines match ``pattern``; returns the last match."""
        rx = re.compile(pattern)

        def matches() -> list[str]:
            return [ln for ln in self.lines if rx.search(ln)]

        with self._cond:
            ok = self._cond.wait_for(lambda: len(matches()) >= count or self.proc.poll() is not None, timeout)
            found = matches()
        if len(found) < count:
            raise AssertionError(f"no log line {pattern!r} (x{count}) after {timeout}s (ok={ok}):\n{self.log}")
        return found[count - 1]

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)


@pytest.fixture
def start_reader() -> Iterator[Callable[..., ReaderProcess]]:
    """Start sensor-reader processes (killed at teardown if still running)."""
    started: list[ReaderProcess] = []

    def start(*args: str | Path, env: dict[str, str] | None = None, wait: bool = True) -> ReaderProcess:
        rp = ReaderProcess([str(a) for a in args], env)
        started.append(rp)
        if wait:
            rp.wait_log(r"recording .* session")
        return rp

    yield start
    for rp in started:
        if rp.proc.poll() is None:
            rp.kill()


def sessions(data_dir: Path, device: str) -> list[Path]:
    """Session folders of a device, in start order."""
    dirs = [p for p in (data_dir / device).iterdir() if (p / "session.json").exists()]
    return sorted(dirs, key=lambda p: SessionManifest.load(p).started_at)


def recorded_rows(session_dir: Path) -> list[list[str]]:
    """All rows of a session's committed batches (strictly parsed), time first."""
    rows: list[list[str]] = []
    for batch in committed_batches(session_dir):
        rows.extend(read_batch_rows(batch)[1])
    return rows


def device_lines(rows: list[list[str]]) -> list[str]:
    """The device part of rows (after the host and sample times), as the line text the simulator sent."""
    return [",".join(r[2:]) for r in rows]


def reader_status(data_dir: Path, device: str) -> dict[str, Any]:
    """The reader's published status (empty if not there yet)."""
    try:
        return json.loads(status_path(data_dir, f"reader-{device}").read_bytes())
    except (OSError, ValueError):
        return {}
