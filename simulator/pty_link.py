"""A pseudo-terminal with a stable symlink: the stand-in for a USB serial adapter."""

from __future__ import annotations

import fcntl
import logging
import os
import select
import struct
import termios
import tty
from pathlib import Path

from simulator.errors import SimulatorError

log = logging.getLogger(__name__)


def _replace_symlink(target: str, link: Path) -> None:
    """Point ``link`` at ``target`` atomically (symlink to a temp name, then rename over the link)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, link)


class PtyLink:
    """One pty pair in raw mode with both ends held open and ``link`` pointing at the slave.

    Holding the slave open means the pty never hangs up while a reader closes and reopens it; the data
    written meanwhile waits in the kernel buffer. ``close()`` is the unplug: both ends close (a reader
    holding the slave sees a hangup) and the symlink disappears.
    """

    def __init__(self, link: Path) -> None:
        self.link = Path(link)
        master, slave = os.openpty()
        try:
            tty.setraw(slave, termios.TCSANOW)  # no echo, no CR/LF translation, 8-bit clean
            attrs = termios.tcgetattr(slave)
            attrs[4] = attrs[5] = termios.B115200  # cosmetic: a pty ignores the speed
            termios.tcsetattr(slave, termios.TCSANOW, attrs)
            os.set_blocking(master, False)
            self.name = os.ttyname(slave)
            _replace_symlink(self.name, self.link)
        except OSError as err:
            os.close(master)
            os.close(slave)
            raise SimulatorError(f"cannot set up pty for {self.link}: {err}") from err
        self.master: int | None = master
        self.slave: int | None = slave
        log.debug("pty %s opened, link %s", self.name, self.link)

    @property
    def closed(self) -> bool:
        """True once the pty has been closed (unplugged)."""
        return self.master is None

    def wait_writable(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until the kernel accepts more bytes."""
        if self.master is None:
            return False
        r = select.select([], [self.master], [], timeout)
        return bool(r[1])

    def write_some(self, data: memoryview) -> int:
        """Write what the kernel accepts now (0 when its buffer is full)."""
        assert self.master is not None
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0

    def unread_bytes(self) -> int:
        """Bytes written to the pty that no reader has consumed yet."""
        if self.slave is None:
            return 0
        buf = fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", buf)[0])

    def close(self) -> None:
        """Close both ends and remove the symlink if it still points at this pty."""
        if self.master is None:
            return
        try:
            if os.readlink(self.link) == self.name:
                self.link.unlink()
        except OSError:
            pass
        for fd in (self.master, self.slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master = self.slave = None
        log.debug("pty %s closed", self.name)
