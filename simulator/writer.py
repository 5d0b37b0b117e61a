"""The simulator's writer thread: paces data lines, applies queued commands between whole lines."""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from simulator import faults
from simulator.errors import SimulatorError, SimulatorStopped
from simulator.faults import FaultEvent
from simulator.framing import LineFormat
from simulator.pty_link import PtyLink
from simulator.truth import TruthSegment, write_segment
from simulator.waveforms import Waveforms

log = logging.getLogger(__name__)

TICK_SECONDS = 0.005  # emit the lines due every 5 ms
MAX_CHUNK_LINES = 4096  # at most this many lines per write (rate 0, or catching up)
BULK_TIME_BASE_HZ = 1000.0  # waveform time axis when rate == 0 (as fast as possible)
COMMAND_TIMEOUT = 10.0
BLOCKED_POLL = 0.05  # while the kernel buffer is full, look at the command queue this often
RECORD_FLUSH_SECONDS = 0.5


@dataclasses.dataclass(eq=False)
class Command:
    """A request handed to the writer thread, applied between whole lines."""

    kind: str
    args: dict[str, Any]
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    started: bool = False
    result: Any = None
    error: BaseException | None = None


class WriterLoop:
    """The writer-thread half of ``Simulator``: only this thread writes to the pty."""

    # State shared with the caller side (see Simulator.__init__); guarded by _cond unless noted.
    format: LineFormat
    waves: Waveforms
    link: Path
    rate: float
    header: bool
    seq_start: int
    count: int | None
    duration: float | None
    keep_sent: bool
    _rng: random.Random
    pieces: tuple[int, int] | None
    _piece_rng: random.Random
    _cond: threading.Condition
    _pty_lock: threading.Lock
    _commands: collections.deque[Command]
    _chunks: list[bytes]
    _faults: list[FaultEvent]
    _record: BinaryIO | None  # writer thread only
    _pty: PtyLink | None  # replaced by the writer thread under _pty_lock
    _next: int
    _t0: float
    _base: float
    _started_at: float
    _paused: bool
    _pause_until: float | None
    _done: bool
    _stopping: bool
    _error: BaseException | None
    _last_flush: float
    burst: float  # seconds between deliveries (a USB adapter's latency timer); 0: each line when due
    _truth: BinaryIO | None  # writer thread only
    _next_burst: float

    def _run(self) -> None:
        """Thread body: header, then lines as they fall due, commands in between, until stopped."""
        try:
            if self.header:
                self._write(self.format.wire(self.format.header_text()))
            while True:
                with self._cond:
                    if self._stopping:
                        break
                    cmd = self._commands.popleft() if self._commands else None
                    if cmd is not None:
                        cmd.started = True
                if cmd is not None:
                    self._apply(cmd)
                    continue
                due = self._lines_due()
                if due > 0:
                    self._emit(due)
                    continue
                with self._cond:
                    if not self._commands and not self._stopping:
                        self._cond.wait(self._idle_wait())
        except BaseException as err:  # the thread must report, never die silently
            log.exception("simulator writer failed")
            with self._cond:
                self._error = err
        finally:
            self._flush_record(force=True)
            with self._cond:
                pending = list(self._commands)
                self._commands.clear()
                self._cond.notify_all()
            for cmd in pending:
                cmd.error = SimulatorStopped(f"{cmd.kind}: simulator stopped")
                cmd.done.set()

    def _idle_wait(self) -> float:
        """How long the idle writer may sleep before something can fall due (commands wake it earlier)."""
        now = time.monotonic()
        limit = 0.5
        if self.duration is not None and not self._done:
            limit = min(limit, max(0.0, self._started_at + self.duration - now))
        if self._paused:
            return limit if self._pause_until is None else max(0.0, min(self._pause_until - now, limit))
        if self.rate > 0 and not self._done and self._pty is not None:
            next_due = self._t0 + (self._next + 1 - self._base) / self.rate
            if self.burst > 0:
                next_due = max(next_due, self._next_burst)
            return min(max(next_due - now, TICK_SECONDS), limit)  # at high rates, one write per tick
        return limit

    def _reset_schedule(self) -> None:
        """Restart rate pacing from now (after start, resume and replug: no burst); log it as a truth segment."""
        self._t0 = time.monotonic()
        wall = time.time()
        self._base = float(self._next)
        self._next_burst = self._t0 + self.burst
        if self._truth is not None and self.rate > 0:
            write_segment(self._truth, TruthSegment(self.seq_start + self._next, wall + 1.0 / self.rate, self.rate))

    def _lines_due(self) -> int:
        """Number of data lines to write now (0 while paused, unplugged or done)."""
        now = time.monotonic()
        if self._paused and self._pause_until is not None and now >= self._pause_until:
            self._paused, self._pause_until = False, None
            self._reset_schedule()
            log.info("resumed after pause")
        if self._done:
            return 0
        remaining = MAX_CHUNK_LINES if self.count is None else min(MAX_CHUNK_LINES, self.count - self._next)
        if remaining <= 0 or (self.duration is not None and now - self._started_at >= self.duration):
            with self._cond:
                self._done = True
                self._cond.notify_all()
            self._flush_record(force=True)
            log.info("done: %d lines sent", self._next)
            return 0
        if self._paused or self._pty is None:
            return 0
        if self.rate == 0:
            return remaining
        if self.burst > 0:
            if now < self._next_burst:
                return 0
            self._next_burst += self.burst * max(1, int((now - self._next_burst) / self.burst) + 1)
        due = int(self._base + (now - self._t0) * self.rate) - self._next
        return max(0, min(due, remaining))

    def _emit(self, n: int) -> None:
        """Format and write the next ``n`` data lines, recorded as sent before the write.

        Recording first means ``sent`` is never behind what a reader can have seen; a write cut short by
        an unplug or stop takes back the lines that did not make it out whole.
        """
        first = self._next
        wire, text, ends = self.format.format_block(self.seq_start + first, self.waves.block(first, n))
        with self._cond:
            if self.keep_sent:
                self._chunks.append(text)
            self._next += n
            self._cond.notify_all()
        written = self._write(wire)
        if written < len(wire):
            kept = bisect.bisect_right(ends, written)
            whole, text = text, b"".join(line + b"\n" for line in text.split(b"\n")[:kept])
            with self._cond:
                if self.keep_sent:  # the block is the tail of the last chunk (``sent`` may have merged chunks)
                    self._chunks[-1] = self._chunks[-1][: len(self._chunks[-1]) - len(whole)] + text
                self._next = first + kept
            log.info("write cut short: %d of %d lines went out", kept, n)
        if self._record is not None and text:
            self._record.write(text)
            self._flush_record()

    def _flush_record(self, force: bool = False) -> None:
        """Flush the record file now and then, so an outside observer sees progress."""
        now = time.monotonic()
        if self._record is not None and (force or now - self._last_flush >= RECORD_FLUSH_SECONDS):
            self._record.flush()
            self._last_flush = now

    def _must_abort(self) -> bool:
        """True when a blocked write must give up: stop, or an unplug whose drain time is over."""
        with self._cond:
            if self._stopping:
                return True
            now = time.monotonic()
            return any(c.kind == "unplug" and c.args.setdefault("_deadline", now + (c.args["drain"] or 0.0)) <= now
                       for c in self._commands)

    def _write(self, data: bytes) -> int:
        """Write all of ``data``, waiting while the kernel buffer is full; returns bytes written."""
        view = memoryview(data)
        off = 0
        pty = self._pty
        if pty is None:
            return 0
        while off < len(view):
            if self.pieces is None:
                off += pty.write_some(view[off:])
            else:  # a UART: the reader may wake up between any two pieces, mid-line
                off += pty.write_some(view[off : off + self._piece_rng.randint(*self.pieces)])
                time.sleep(0)
            if off < len(view):
                if self._must_abort():
                    break
                pty.wait_writable(BLOCKED_POLL)
        return off

    def _inject(self, kind: str, data: bytes, record: bytes | None = None) -> FaultEvent:
        """Write a fault's bytes (the rest of them, for ``record``) and remember it."""
        if self._pty is None:
            raise SimulatorError(f"cannot inject {kind}: device unplugged")
        self._write(data)
        event = FaultEvent(kind, data if record is None else record, self._next)
        with self._cond:
            self._faults.append(event)
        log.debug("injected %s (%d bytes) after line %d", kind, len(data), self._next)
        return event

    def _next_wire_line(self) -> bytes:
        """The next data line as it would go on the wire (not consumed)."""
        wire, _, _ = self.format.format_block(self.seq_start + self._next, self.waves.block(self._next, 1))
        return wire

    def _apply(self, cmd: Command) -> None:
        """Apply one command in the writer thread and wake its caller."""
        try:
            cmd.result = getattr(self, f"_do_{cmd.kind}")(**{k: v for k, v in cmd.args.items()
                                                            if not k.startswith("_")})
        except Exception as err:  # noqa: BLE001 - reported to the caller; the stream goes on
            cmd.error = err
        finally:
            cmd.done.set()

    # -- command handlers (writer thread) -------------------------------------------------------------
    def _do_garbage(self, nbytes: int) -> FaultEvent:
        return self._inject("garbage", faults.garbage(nbytes, self._rng, self.format.eol))

    def _do_truncated(self) -> FaultEvent:
        delim = self.format.delimiter.encode("ascii")
        return self._inject("truncated", faults.truncated(self._next_wire_line(), delim, self.format.eol))

    def _do_nul(self) -> FaultEvent:
        return self._inject("nul", faults.with_nul(self._next_wire_line(), self.format.eol))

    def _do_line(self, data: bytes) -> FaultEvent:
        return self._inject("line", data)

    def _do_overlong(self, nbytes: int, hold: float) -> FaultEvent:
        body = faults.overlong_body(nbytes)
        if self._pty is None:
            raise SimulatorError("cannot inject overlong: device unplugged")
        self._write(body)
        with self._cond:  # the line stays open; stop() cuts the wait short
            self._cond.wait_for(lambda: self._stopping, hold)
        return self._inject("overlong", self.format.eol, record=body + self.format.eol)

    def _do_header(self) -> None:
        if self._pty is None:
            raise SimulatorError("cannot send header: device unplugged")
        self._write(self.format.wire(self.format.header_text()))

    def _do_pause(self, seconds: float | None) -> None:
        self._paused = True
        self._pause_until = time.monotonic() + seconds if seconds is not None else None
        log.info("paused%s", f" for {seconds} s" if seconds is not None else "")

    def _do_resume(self) -> None:
        if self._paused:
            self._paused, self._pause_until = False, None
            self._reset_schedule()
            log.info("resumed")

    def _do_unplug(self, drain: float | None) -> int:
        if self._pty is None:
            raise SimulatorError("already unplugged")
        if drain:
            self._drain(drain)
        lost = self._close_pty()
        log.info("unplugged %s (%d unread bytes lost)", self.link, lost)
        return lost

    def _drain(self, timeout: float, settle: float = 0.02) -> None:
        """Wait (emitting nothing) until the reader has taken every byte, or ``timeout`` passed, or stop."""
        assert self._pty is not None
        deadline = time.monotonic() + timeout
        zero_since: float | None = None  # bytes reach the readable queue asynchronously: want 0 twice
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self._pty.unread_bytes() > 0:
                zero_since = None
            elif zero_since is None:
                zero_since = now
            elif now - zero_since >= settle:
                return
            with self._cond:
                if self._cond.wait_for(lambda: self._stopping, 0.005):
                    return

    def _do_replug(self) -> str:
        if self._pty is not None:
            raise SimulatorError("already plugged in")
        pty = PtyLink(self.link)
        with self._pty_lock:
            self._pty = pty
        self._reset_schedule()
        if self.header:
            self._write(self.format.wire(self.format.header_text()))
        log.info("replugged: %s at %s, sequence continues at line %d", pty.name, self.link, self._next)
        return pty.name

    def _close_pty(self) -> int:
        """Close the current pty (unplug or stop); returns the unread bytes lost with it."""
        with self._pty_lock:
            pty, self._pty = self._pty, None
            if pty is None:
                return 0
            lost = pty.unread_bytes()
            pty.close()
            return lost
