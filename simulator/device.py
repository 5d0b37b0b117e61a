"""The simulated monitor: a writer thread streaming framed sample lines into a pty, with faults on demand."""

from __future__ import annotations

import collections
import logging
import math
import random
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Self

from simulator.errors import SimulatorConfigError, SimulatorError, SimulatorStopped, SimulatorTimeout
from simulator.faults import FaultEvent
from simulator.framing import LineFormat
from simulator.pty_link import PtyLink
from simulator.waveforms import WAVEFORMS, Waveforms
from simulator.writer import BULK_TIME_BASE_HZ, COMMAND_TIMEOUT, Command, WriterLoop

log = logging.getLogger(__name__)


class Simulator(WriterLoop):
    """A simulated lab monitor streaming text sample lines on a real pseudo-terminal behind ``link``.

    Lines are ``[seq<d>]v1<d>v2...[*HH]<eol>``; values are fixed-decimal text. Every valid data line sent is
    recorded (``sent``; optional ``record`` file) without checksum or line ending. Writes wait for the
    reader (like hardware flow control): nothing is dropped while the reader is slow or reconnecting.
    Fault and plug commands are applied by the writer thread between whole lines and return once applied.
    """

    def __init__(self, link: str | Path, channels: int = 4, rate: float = 100.0, *, waveform: str = "ecg",
                 freq: float = 1.0, seq: bool = False, seq_start: int = 0, header: bool = False,
                 delimiter: str = ",", checksum: bool = False, crlf: bool = False, cr: bool = False,
                 decimals: int = 4, count: int | None = None, duration: float | None = None, seed: int = 0,
                 keep_sent: bool = True, record: str | Path | None = None,
                 pieces: tuple[int, int] | None = None, burst: float = 0.0,
                 truth: str | Path | None = None) -> None:
        if not (rate >= 0 and math.isfinite(rate)):
            raise SimulatorConfigError(f"rate must be a finite number >= 0 (0 = as fast as possible), not {rate}")
        if waveform not in WAVEFORMS:
            raise SimulatorConfigError(f"waveform must be one of {', '.join(WAVEFORMS)}, not {waveform!r}")
        if count is not None and count < 0:
            raise SimulatorConfigError("count must be >= 0")
        if duration is not None and not duration >= 0:
            raise SimulatorConfigError("duration must be >= 0")
        if not (burst >= 0 and math.isfinite(burst)):
            raise SimulatorConfigError(f"burst must be a finite number of seconds >= 0, not {burst}")
        if seq_start < 0:
            raise SimulatorConfigError("seq_start must be >= 0")
        try:
            self.format = LineFormat(channels=channels, delimiter=delimiter, seq=seq, checksum=checksum,
                                     crlf=crlf, cr=cr, decimals=decimals)
            self.waves = Waveforms(waveform, channels, rate or BULK_TIME_BASE_HZ, freq=freq, seed=seed)
        except ValueError as err:
            raise SimulatorConfigError(str(err)) from err
        self.link = Path(link)
        self.rate = float(rate)
        self.header = header
        self.seq_start = seq_start
        self.count = count
        self.duration = duration
        self.keep_sent = keep_sent
        self.record_path = Path(record) if record is not None else None
        self._rng = random.Random(seed)
        if pieces is not None and not 1 <= pieces[0] <= pieces[1]:
            raise SimulatorConfigError(f"pieces must be (low, high) byte counts with 1 <= low <= high, not {pieces}")
        self.pieces = pieces  # write in pieces of low..high bytes, as a UART trickles them (None: whole)
        self._piece_rng = random.Random(seed + 1)
        self._cond = threading.Condition()
        self._pty_lock = threading.Lock()
        self._commands: collections.deque[Command] = collections.deque()
        self._chunks: list[bytes] = []
        self._faults: list[FaultEvent] = []
        self._record: BinaryIO | None = None
        self._pty: PtyLink | None = None
        self._thread: threading.Thread | None = None
        self._next = 0  # data lines sent (counted just before their write) == index of the next line
        self._t0 = self._base = 0.0
        self._started_at = 0.0
        self._paused = False
        self._pause_until: float | None = None
        self._done = False
        self._stopping = False
        self._error: BaseException | None = None
        self._last_flush = 0.0
        self.burst = float(burst)  # deliver what fell due every `burst` s, as a USB adapter's latency timer
        self.truth_path = Path(truth) if truth is not None else None  # log of the true sample times
        self._truth: BinaryIO | None = None
        self._next_burst = 0.0

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> Self:
        """Open the pty and the symlink, then start streaming; returns self."""
        if self._thread is not None:
            raise SimulatorError("simulator already started")
        self._pty = PtyLink(self.link)
        if self.record_path is not None:
            try:
                self._record = open(self.record_path, "wb")  # noqa: SIM115 - closed by stop()
            except OSError:
                self._close_pty()
                raise
        if self.truth_path is not None:
            try:
                self._truth = open(self.truth_path, "wb")  # noqa: SIM115 - closed by stop()
            except OSError:
                self._close_pty()
                raise
        self._started_at = time.monotonic()
        self._reset_schedule()
        self._thread = threading.Thread(target=self._run, name=f"sensor-sim {self.link.name}", daemon=True)
        self._thread.start()
        log.info("simulated monitor on %s (link %s): %d channels, %s lines/s", self._pty.name, self.link,
                 self.format.channels, self.rate or "max")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop streaming, close the pty, remove the symlink and flush the record file."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise SimulatorTimeout(f"writer thread did not stop within {timeout} s")
        self._close_pty()
        if self._record is not None:
            self._record.close()
            self._record = None
        if self._truth is not None:
            self._truth.close()
            self._truth = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state --------------------------------------------------------------------------------------
    @property
    def port(self) -> str | None:
        """The current pty device name (``/dev/pts/N``), or None while unplugged."""
        pty = self._pty
        return pty.name if pty is not None else None

    @property
    def columns(self) -> list[str]:
        """Column names (as the header line gives them)."""
        return self.format.columns()

    @property
    def sent_count(self) -> int:
        """Number of valid data lines sent so far (counted just before their bytes go to the kernel)."""
        with self._cond:
            return self._next

    @property
    def sent(self) -> list[str]:
        """Every valid data line sent, as text without checksum or line ending (needs ``keep_sent``)."""
        if not self.keep_sent:
            raise SimulatorError("sent lines are not kept (keep_sent=False); use record= instead")
        with self._cond:
            chunks = self._chunks[:]
        if len(chunks) > 1:
            joined = b"".join(chunks)
            with self._cond:  # compact, so later calls split only what is new
                self._chunks[: len(chunks)] = [joined]
            chunks = [joined]
        text = chunks[0].decode("ascii") if chunks else ""
        return text.splitlines()

    @property
    def faults(self) -> list[FaultEvent]:
        """The faults injected so far, in order."""
        with self._cond:
            return list(self._faults)

    @property
    def done(self) -> bool:
        """True once ``count`` lines were sent or ``duration`` elapsed."""
        with self._cond:
            return self._done

    @property
    def plugged(self) -> bool:
        """True while the pty exists (between start/replug and unplug/stop)."""
        return self._pty is not None

    def unread_bytes(self) -> int:
        """Bytes waiting in the pty that no reader has consumed yet (0 while unplugged)."""
        with self._pty_lock:
            return self._pty.unread_bytes() if self._pty is not None else 0

    def wait_sent(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` data lines were sent; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._next >= n or self._error is not None, timeout) \
                and self._next >= n

    def wait_done(self, timeout: float) -> bool:
        """Wait until ``count`` lines were sent or ``duration`` elapsed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done or self._error is not None, timeout) and self._done

    def wait_drained(self, timeout: float, settle: float = 0.02) -> bool:
        """Wait until the reader has consumed every byte written so far; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            before = self.sent_count
            if self.unread_bytes() == 0:
                # The kernel moves written bytes into the readable queue asynchronously: look again a moment
                # later (a plain sleep: there is nothing to wait on).
                time.sleep(settle)
                if self.unread_bytes() == 0 and self.sent_count == before:
                    return True
            if time.monotonic() >= deadline:
                return False
            with self._cond:
                self._cond.wait(0.01)

    # -- faults and plug commands (thread-safe, applied between whole lines) -------------------------
    def inject_garbage(self, nbytes: int = 32, timeout: float = COMMAND_TIMEOUT) -> FaultEvent:
        """Send ``nbytes`` random bytes (non-ASCII included) and a line ending: one bad line."""
        return self._submit("garbage", timeout, nbytes=nbytes)

    def inject_truncated(self, timeout: float = COMMAND_TIMEOUT) -> FaultEvent:
        """Send the next valid line cut short, then a line ending (the full line follows)."""
        return self._submit("truncated", timeout)

    def inject_overlong(self, nbytes: int = 10000, hold: float = 0.2,
                        timeout: float = COMMAND_TIMEOUT) -> FaultEvent:
        """Send ``nbytes`` without a line ending, wait ``hold`` seconds, then end the line."""
        return self._submit("overlong", timeout + hold, nbytes=nbytes, hold=hold)

    def inject_nul(self, timeout: float = COMMAND_TIMEOUT) -> FaultEvent:
        """Send a valid-looking line with NUL bytes inside."""
        return self._submit("nul", timeout)

    def inject_line(self, data: bytes, timeout: float = COMMAND_TIMEOUT) -> FaultEvent:
        """Send raw bytes as they are (add the line ending yourself)."""
        return self._submit("line", timeout, data=bytes(data))

    def send_header(self, timeout: float = COMMAND_TIMEOUT) -> None:
        """Send the header line now."""
        self._submit("header", timeout)

    def pause(self, seconds: float | None = None, timeout: float = COMMAND_TIMEOUT) -> None:
        """Stop emitting lines (for ``seconds``, or until ``resume()``); the pty stays open."""
        self._submit("pause", timeout, seconds=seconds)

    def resume(self, timeout: float = COMMAND_TIMEOUT) -> None:
        """Resume emitting after ``pause()``; the rate restarts from now (no burst)."""
        self._submit("resume", timeout)

    def unplug(self, drain: float | None = None, timeout: float = COMMAND_TIMEOUT) -> int:
        """Make the device vanish: close both pty ends and remove the symlink.

        With ``drain`` seconds, first stop emitting and wait (up to that long) for the reader to consume what
        is buffered. Returns the number of unread bytes lost with the pty.
        """
        return self._submit("unplug", timeout + (drain or 0.0), drain=drain)

    def replug(self, timeout: float = COMMAND_TIMEOUT) -> str:
        """Plug back in: a new pty at the same symlink; the sequence continues. Returns the new pty name."""
        return self._submit("replug", timeout)

    # -- caller side of the command queue -----------------------------------------------------------
    def _submit(self, kind: str, timeout: float, **args: Any) -> Any:
        """Queue a command for the writer thread and wait until it was applied."""
        cmd = Command(kind, args)
        with self._cond:
            if self._thread is None or self._stopping or self._error is not None:
                raise SimulatorStopped(f"cannot {kind}: simulator not running") from self._error
            self._commands.append(cmd)
            self._cond.notify_all()
        if not cmd.done.wait(timeout):
            with self._cond:
                if not cmd.started:
                    self._commands.remove(cmd)
                    raise SimulatorTimeout(f"{kind} not applied within {timeout} s (is the pty being read?)")
            # Already being written: it completes (whole) once the reader takes bytes again.
            raise SimulatorTimeout(f"{kind} still being written after {timeout} s (is the pty being read?)")
        if cmd.error is not None:
            raise cmd.error
        return cmd.result
