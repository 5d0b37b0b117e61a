"""Text commands for a running simulator (the --control FIFO and --faults schedule)."""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from simulator.device import Simulator
from simulator.errors import SimulatorError

log = logging.getLogger(__name__)

COMMANDS_HELP = """\
control commands (one per line):
  garbage [N]     N random bytes (default 32, non-ASCII included), then a line ending
  truncated       the next line cut short, then a line ending (the full line follows)
  overlong [N] [S] N bytes (default 10000) without a line ending for S s (default 0.2), then one
  nul             a line with NUL bytes inside
  pause [S]       stop sending for S seconds (no S: until "resume")
  resume          send again after "pause"
  unplug          the pty vanishes (its symlink is removed)
  replug          a new pty appears at the same symlink; the sequence counter continues
  header          send the header line now
  status          log the number of lines sent
  stop            stop the simulator and exit"""


def run_command(sim: Simulator, line: str, request_stop: Callable[[], None]) -> None:
    """Apply one text command; errors are logged, never raised."""
    words = line.split()
    if not words:
        return
    name, args = words[0].lower(), words[1:]
    try:
        number = float(args[0]) if args else None
        if name == "garbage":
            sim.inject_garbage(int(number) if number is not None else 32)
        elif name == "truncated":
            sim.inject_truncated()
        elif name == "overlong":
            hold = float(args[1]) if len(args) > 1 else 0.2
            sim.inject_overlong(int(number) if number is not None else 10000, hold=hold)
        elif name == "nul":
            sim.inject_nul()
        elif name == "pause":
            sim.pause(number)
        elif name == "resume":
            sim.resume()
        elif name == "unplug":
            sim.unplug()
        elif name == "replug":
            sim.replug()
        elif name == "header":
            sim.send_header()
        elif name == "status":
            log.info("status: %d lines sent, plugged=%s, port %s", sim.sent_count, sim.plugged, sim.port)
        elif name == "stop":
            request_stop()
        else:
            log.warning("unknown control command %r (see sensor-sim --help)", line)
            return
        log.info("control: %s", line)
    except (ValueError, SimulatorError) as err:
        log.warning("control command %r failed: %s", line, err)


class ControlFifo:
    """A named pipe whose lines are commands; served by a daemon thread until ``close()``."""

    def __init__(self, path: Path, sim: Simulator, request_stop: Callable[[], None]) -> None:
        self.path = path
        self.sim = sim
        self.request_stop = request_stop
        self._closing = threading.Event()
        try:
            if stat.S_ISFIFO(os.lstat(path).st_mode):
                path.unlink()  # a stale FIFO from an earlier run
        except FileNotFoundError:
            pass
        os.mkfifo(path, 0o600)
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY)  # our own writer: no EOF spin when a client disconnects
        self._thread = threading.Thread(target=self._serve, name="sensor-sim control", daemon=True)
        self._thread.start()
        log.info("control FIFO %s (write commands to it, e.g. echo garbage > %s)", path, path)

    def _serve(self) -> None:
        """Read command lines and apply them in order."""
        pending = b""
        while not self._closing.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(self._fd, 4096)
            except OSError as err:
                if err.errno in (errno.EAGAIN, errno.EBADF):
                    continue
                raise
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                run_command(self.sim, raw.decode("utf-8", "replace").strip(), self.request_stop)

    def close(self) -> None:
        """Stop serving and remove the FIFO."""
        self._closing.set()
        self._thread.join(2.0)
        for fd in (self._fd, self._keep):
            os.close(fd)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
