"""A disk reserve: space kept allocated on the data disk, given back when a stop finds the disk full.

Memory holds the lines the disk refused (up to ``SENSOR_MAX_BUFFER_MB``). A stop or an unplug cannot wait
for space forever (systemd's stop timeout), so the reader keeps a file of that size allocated: deleting it
makes room to commit what memory holds. It is allocated again once the disk has room.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class DiskReserve:
    """A preallocated file of ``size`` bytes at ``path`` (size 0: no reserve)."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._short_logged = False

    def ensure(self) -> bool:
        """Allocate the reserve if it is not (fully) there; False if the disk has no room for it now."""
        if self.size <= 0:
            return False
        fd = -1
        old = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            old = os.fstat(fd).st_size
            os.posix_fallocate(fd, 0, self.size)
        except OSError as err:
            if fd >= 0:
                try:  # give back what a half-done allocation took
                    os.ftruncate(fd, old)
                except OSError:
                    pass
            if not self._short_logged:
                log.warning("cannot keep a %.1f MB reserve at %s (%s): a stop while the disk is full may lose "
                            "what memory holds", self.size / 2**20, self.path, err.strerror or err)
                self._short_logged = True
            return False
        finally:
            if fd >= 0:
                os.close(fd)
        if self._short_logged:
            log.info("disk reserve of %.1f MB in place at %s", self.size / 2**20, self.path)
            self._short_logged = False
        return True

    def release(self) -> int:
        """Delete the reserve; returns the bytes given back to the disk (0 if there was none)."""
        try:
            size = self.path.stat().st_size
            self.path.unlink()
        except OSError:
            return 0
        return size
