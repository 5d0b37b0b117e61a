"""The pid/lock file: an fcntl lock so two uploaders never work on one data directory at once.

The lock is taken before daemonising (so a second instance fails at once, in the foreground, with a
clear message); the locked descriptor is inherited by the daemon, which then writes its own pid.
The kernel drops the lock when the process dies, even by kill -9, so a stale file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from uploader.errors import AlreadyRunning


class PidLock:
    """An exclusive, non-blocking lock on a pid file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, write_pid: bool = True) -> None:
        """Take the lock (and record our pid) or raise AlreadyRunning naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another sensor-uploader is already running (pid {holder}, lock {self.path})"
            ) from err
        self._fd = fd
        if write_pid:
            self.write_pid()
        else:
            os.ftruncate(fd, 0)  # no stale pid from an earlier run while the daemon is being born

    def fileno(self) -> int:
        """The locked descriptor (kept open across daemonisation)."""
        if self._fd is None:
            raise RuntimeError("lock not held")
        return self._fd

    def write_pid(self) -> None:
        """Record the current process as the holder."""
        fd = self.fileno()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Remove the pid file and drop the lock."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None
