"""The read loop: port → parser → disk writer (sacred) and live stream (best-effort), one session per connection."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kernel.batch import reject_records, row_prefix, sample_rows, sample_rows_at
from kernel.layout import reserve_path, session_id_at
from kernel.manifest import END_RECOVERED, END_STOPPED, END_UNPLUGGED, LOST_KILL, LOST_OFFLINE
from kernel.notify import Notifier
from kernel.status import ReaderStatus, reader_status_name, write_status
from reader import __version__
from reader.clock import SampleClock
from reader.errors import PortGone
from reader.ntp import ntp_synchronized
from reader.parser import LineParser, ParserConfig, ParseResult
from reader.port import PortConfig, SerialPort, device_id_for, wait_for_port
from reader.reserve import DiskReserve
from reader.session import (
    DeviceLock,
    EndCounts,
    PreviousSession,
    SessionFiles,
    previous_session,
    recover_device,
)
from reader.settings import ReaderSettings
from reader.stream import LiveStream
from reader.writer import DiskWriter

log = logging.getLogger(__name__)

REJECT_LOG_INTERVAL = 10.0


class Counters:
    """Running counts of the current session, read by the status publishers."""

    def __init__(self) -> None:
        self.lines = 0
        self.rejects = 0
        self.gaps = 0
        self.missing = 0
        self.rate = 0.0
        self.lost: dict[str, int] = {}  # by cause (kernel.manifest.LOST_*); the disk writer adds its own

    def at_end(self, last_seq: int | None, clock: dict[str, object] | None = None,
               ntp: bool | None = None) -> EndCounts:
        """Counts for the session's final manifest."""
        return EndCounts(self.rejects, self.gaps, self.missing, dict(self.lost), last_seq, clock, ntp)


class Recorder:
    """Records sessions from one port until stopped; survives unplug/replug."""

    def __init__(self, settings: ReaderSettings, notifier: Notifier, stop: threading.Event) -> None:
        self.s = settings
        self.notifier = notifier
        self.stop = stop
        self.port_config = PortConfig(
            url=settings.port, baudrate=settings.baudrate, bytesize=settings.bytesize, parity=settings.parity,
            stopbits=settings.stopbits, rtscts=settings.rtscts,
        )
        self.parser_config = ParserConfig(
            delimiter=settings.delimiter.encode(), seq=settings.seq, checksum=settings.checksum,
            max_line=settings.max_line, eol=settings.eol,
        )
        self.counters = Counters()
        self.device_id: str | None = None
        self.session_id = ""
        self.connected = False
        self.writer: DiskWriter | None = None
        self.stream: LiveStream | None = None
        self._locks: dict[str, DeviceLock] = {}
        self._ready_sent = False
        self._previous: PreviousSession | None = None  # where the device's counter stood last time
        self._next_ping = 0.0
        self._last_seq: int | None = None  # the last counter the read loop accepted
        self.clock = SampleClock(settings.sample_rate or None)
        self._ntp_start: bool | None = None

    # -- status -------------------------------------------------------------------------------------
    def status(self) -> ReaderStatus:
        """The health snapshot shared by the stream, the status file and systemd's STATUS line."""
        c = self.counters
        writer = self.writer
        lost = dict(c.lost)
        return ReaderStatus(
            device=self.device_id, session=self.session_id, connected=self.connected,
            port=self.s.port, recording=self.s.record, rate=round(c.rate, 1), lines=c.lines,
            rejects=c.rejects, gaps=c.gaps, missing=c.missing,
            frames_dropped=self.stream.frames_dropped if self.stream else 0,
            lost_lines=sum(lost.values()), lost=lost,
            disk_error=writer.disk_error if writer is not None else None,
            unit=self.s.unit, clock=dataclasses.asdict(self.clock.quality(self._ntp_start, None)), time=time.time(),
        )

    def status_document(self) -> dict[str, Any]:
        """The health snapshot as the document the stream and the status file carry."""
        return self.status().to_dict()

    def _publish(self) -> None:
        st = self.status()
        if self.connected:
            lost = f", {st.lost_lines} lost" if st.lost_lines else ""
            self.notifier.status(
                f"recording {self.session_id} from {self.s.port}{' (DISK ERROR)' if st.disk_error else ''}: "
                f"{st.rate:.0f} lines/s, {st.lines} lines, {st.rejects} rejects, {st.gaps} gaps{lost}"
            )
        else:
            self.notifier.status(f"waiting for device {self.s.port}")
        if self.s.data_dir is not None and self.device_id:
            try:
                write_status(self.s.data_dir, reader_status_name(self.device_id), st.to_dict())
            except OSError:
                pass  # advisory only; a full disk is reported through disk_error

    def _waiting(self) -> None:
        """One turn of the wait-for-device loop: the reader's work while there is no port."""
        now = time.monotonic()
        if now >= self._next_ping:
            self._next_ping = now + 1.0
            self._publish()
            self.notifier.watchdog()  # the wait loop is alive and looking for the device

    # -- main loop ----------------------------------------------------------------------------------
    def run(self) -> int:
        """Record until stopped; returns the exit code."""
        if self.s.stream:
            self.stream = LiveStream(self.s.ws_url, self.s.token, self.status_document, self.s.stream_interval,
                                     self.s.stream_max_rate)
            self.stream.start()
        try:
            while not self.stop.is_set():
                if not self._ready_sent:
                    self.notifier.ready()  # ready = configured and waiting for, or reading, the port
                    self._ready_sent = True
                port = wait_for_port(self.port_config, self.stop, on_wait=self._waiting)
                if port is None:
                    break
                try:
                    self._record(port)
                finally:
                    port.close()
        finally:
            self.notifier.stopping()
            if self.stream is not None:
                self.stream.stop()
            for lock in self._locks.values():
                lock.release()
        return 0

    def _record(self, port: SerialPort) -> None:
        device_id, usb_serial = device_id_for(self.s.port)
        self.device_id = self.s.device_id or device_id
        self.counters = Counters()
        self.clock = SampleClock(self.s.sample_rate or None)
        self._ntp_start = ntp_synchronized()
        if self.s.record:
            assert self.s.data_dir is not None
            device_dir = self.s.data_dir / self.device_id
            if self.device_id not in self._locks:
                self._locks[self.device_id] = DeviceLock(device_dir)
            recover_device(device_dir)
            self._previous = previous_session(device_dir)
            self.writer = self._start_writer(device_dir, usb_serial)
        self.session_id = self.writer.session.dir.name if self.writer and self.writer.session else _demo_id()
        self.connected = True
        log.info("recording %s as device %s, session %s", self.s.port, self.device_id, self.session_id)
        if self.stream:
            self.stream.status_soon()
        reason = self._read_loop(port)
        self.connected = False
        if self.stream:
            self.stream.status_soon()
        log.info("session %s ended (%s): %d lines, %d rejects, %d gaps", self.session_id, reason,
                 self.counters.lines, self.counters.rejects, self.counters.gaps)
        if self.writer is not None:
            self._close_writer(self.writer, reason)
            self.writer = None  # no session is written now: no disk error to show until the next one
            self._publish()

    def _close_writer(self, writer: DiskWriter, reason: str) -> None:
        """Finish the session; the writer may retry a refused disk for up to the stop timeout."""
        ntp_end = ntp_synchronized()
        quality = self.clock.quality(self._ntp_start, ntp_end)
        ntp = None if None in (self._ntp_start, ntp_end) else bool(self._ntp_start and ntp_end)
        writer.close(reason, self.counters.at_end(self._last_seq, dataclasses.asdict(quality), ntp), timeout=0)
        deadline = time.monotonic() + self.s.stop_timeout + 10.0  # the writer's own limit comes first
        while not writer.closed and time.monotonic() < deadline:
            writer.wait_closed(1.0)
            if time.monotonic() - writer.heartbeat < 5.0:
                self.notifier.watchdog()  # the writer is working on the close (retrying the disk)
        if not writer.wait_closed(0):
            log.critical("session %s could not be finalised: %s", self.session_id,
                         writer.close_error or "the disk writer did not finish in time")

    def _start_writer(self, device_dir: Path, usb_serial: str | None) -> DiskWriter:
        fields = {"device_id": self.device_id, "port": self.s.port, "baudrate": self.s.baudrate,
                  "software_version": __version__, "usb_serial": usb_serial}

        def open_session() -> SessionFiles:
            return SessionFiles(device_dir, fields, self.s.batch_lines, self.s.batch_seconds)

        assert self.s.data_dir is not None and self.device_id is not None
        reserve_mb = self.s.max_buffer_mb if self.s.reserve_mb is None else self.s.reserve_mb
        reserve = DiskReserve(reserve_path(self.s.data_dir, reader_status_name(self.device_id)), int(reserve_mb * 2**20))
        writer = DiskWriter(open_session, self.s.max_buffer_mb * 2**20, reserve=reserve,
                            stop_timeout=self.s.stop_timeout, lost=self.counters.lost)
        writer.start()
        writer.started.wait(10.0)  # the writer thread creates the session folder itself
        return writer

    def _read_loop(self, port: SerialPort) -> str:
        parser = LineParser(self.parser_config)
        handoff = _Handoff(self.writer, self.stream, self.clock)
        next_tick = time.monotonic()
        window_start, window_lines = next_tick, 0
        self._reject_log = _RejectLog()
        reason = END_STOPPED
        while not self.stop.is_set():
            try:
                data = port.read()
                t = time.time()  # before parsing: the host receive time of this bulk read
            except PortGone as err:
                log.warning("port %s vanished (%s): closing session %s", self.s.port, err, self.session_id)
                reason = END_UNPLUGGED
                break
            now = time.monotonic()
            if data:
                res = parser.feed(data)
                self._dispatch(res, parser, handoff, t)
                window_lines += res.count
                handoff.flush_if_due(now)
            else:
                handoff.flush()  # idle line: hand over at once
                parser.quiet()  # quiet before the first byte: the first line's start will be seen
            if now >= next_tick:
                self.counters.rate = window_lines / max(now - window_start, 1e-6)
                window_start, window_lines = now, 0
                next_tick = now + 1.0
                self._publish()
                if self.writer is None or now - self.writer.heartbeat < 10.0:
                    self.notifier.watchdog()  # the read loop and the disk writer are both alive
        self._dispatch(parser.finish(), parser, handoff, time.time())
        handoff.flush()
        self._last_seq = parser.last_seq if parser.seq else None
        return reason

    def _dispatch(self, res: ParseResult, parser: LineParser, handoff: _Handoff, t: float) -> None:
        """Pass one feed's results on: rows to the writer (record path), lines to the stream (display path)."""
        c = self.counters
        if res.count:
            if handoff.ctx is None and parser.columns is not None:
                handoff.start(self.device_id or "", self.session_id, list(parser.columns))
                if self._previous is not None and parser.seq:
                    self._gap_since_previous(self._previous, res.block)
                self._previous = None
            c.lines += res.count
            handoff.add(res.block, res.count, t, parser.seq, contiguous=not res.gaps)
        if res.gaps:
            c.gaps += res.gaps
            c.missing += res.missing
            self._reject_log.gap(res.gaps, res.missing, c.gaps)
        if res.rejects:
            n = len(res.rejects)
            c.rejects += n
            self._reject_log.rejects(res.rejects, c.rejects)
            if self.writer is not None:
                records = reject_records(((r.reason.encode(), r.data) for r in res.rejects), t)
                if not self.writer.submit_rejects(records, n):
                    c.rejects -= n  # not kept in rejects.txt: counted as lost instead

    def _gap_since_previous(self, previous: PreviousSession, block: bytes) -> None:
        """Count the counter values between the previous session's last row and this session's first."""
        first = int(block.split(b",", 1)[0])
        missing = first - previous.last_seq - 1
        if missing <= 0:
            return  # contiguous, or the device restarted its counter
        cause = LOST_KILL if previous.end_reason == END_RECOVERED else LOST_OFFLINE
        self.counters.lost[cause] = self.counters.lost.get(cause, 0) + missing
        if self.writer is not None:
            self.writer.save_lost()
        log.warning("%d lines missing between session %s (ended %s, last counter %d) and this one (first "
                    "counter %d): counted as lost (%s)", missing, previous.session_id, previous.end_reason,
                    previous.last_seq, first, cause)


class _Handoff:
    """Collects accepted lines for ~10 ms before waking the writer and stream threads (fewer thread switches)."""

    MAX_DELAY = 0.01
    MAX_BYTES = 1 << 18

    def __init__(self, writer: DiskWriter | None, stream: LiveStream | None, clock: SampleClock) -> None:
        self.writer = writer
        self.stream = stream
        self.clock = clock
        self.ctx: tuple[str, str, list[str]] | None = None
        self._rows: list[bytes] = []
        self._count = 0
        self._size = 0
        self._chunks: list[tuple[bytes, int, float]] = []
        self._since = 0.0
        self._lines = 0  # lines so far: the counter of a device without one

    def start(self, device: str, session: str, columns: list[str]) -> None:
        """The columns are known: tell the writer before the first rows."""
        self.ctx = (device, session, columns)
        if self.writer is not None:
            self.writer.submit_columns(columns)

    def add(self, block: bytes, count: int, t: float, seq: bool, contiguous: bool = True) -> None:
        """Take lines received at Unix time t; ``seq``: they start with the device's counter, ``contiguous``:
        without a gap or reset among them."""
        if not self._count:
            self._since = time.monotonic()
        if self.writer is not None:
            pre = row_prefix(t)
            if not seq:
                first, step = self.clock.run(self._lines, count, t)
                self._rows.append(sample_rows(pre, block, first, step))
            elif contiguous:
                first, step = self.clock.run(_first_counter(block), count, t)
                self._rows.append(sample_rows(pre, block, first, step))
            else:
                counters = [_first_counter(line) for line in block[:-1].split(b"\n")]
                self._rows.append(sample_rows_at(pre, block, self.clock.times(counters, t)))
        self._lines += count
        if self.stream is not None:
            self._chunks.append((block, count, t))
        self._count += count
        self._size += len(block)

    def flush_if_due(self, now: float) -> None:
        """Hand over when enough time passed or enough bytes gathered."""
        if self._count and (now - self._since >= self.MAX_DELAY or self._size >= self.MAX_BYTES):
            self.flush()

    def flush(self) -> None:
        """Hand everything gathered to the writer and the stream."""
        if not self._count:
            return
        if self.writer is not None:
            self.writer.submit_rows(b"".join(self._rows), self._count)
            self._rows = []
        if self.stream is not None and self.ctx is not None:
            self.stream.offer(self.ctx, self._chunks)
            self._chunks = []
        self._count = self._size = 0


class _RejectLog:
    """Logs bad input at a bounded rate: the first of each kind at once, then a summary every 10 s."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._since = 0
        self._last = 0.0

    def rejects(self, rejects: list, total: int) -> None:
        """Note rejected lines."""
        for r in rejects:
            if r.reason not in self._seen:
                self._seen.add(r.reason)
                log.warning("rejected a line (%s): %r (kept in the session's reject file)", r.reason, r.data[:80])
            else:
                self._since += 1
        self._maybe_summary(total)

    def gap(self, gaps: int, missing: int, total: int) -> None:
        """Note sequence-counter gaps."""
        if "gap" not in self._seen:
            self._seen.add("gap")
            log.warning("sequence counter gap: %d lines missing from the device's stream", missing)

    def _maybe_summary(self, total: int) -> None:
        now = time.monotonic()
        if self._since and now - self._last >= REJECT_LOG_INTERVAL:
            log.warning("%d more rejected lines (%d in this session)", self._since, total)
            self._since, self._last = 0, now


def _first_counter(lines: bytes) -> int:
    """The counter (first field) of the first of some lines."""
    end = lines.find(b"\n")
    comma = lines.find(b",", 0, end if end >= 0 else len(lines))
    return int(lines[: comma if comma >= 0 else end if end >= 0 else len(lines)])


def _demo_id() -> str:
    return session_id_at(datetime.now(UTC))
