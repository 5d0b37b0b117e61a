"""The live stream: best-effort frames to the web app over a websocket, never in the way of recording."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from kernel.frames import samples_message, status_message

log = logging.getLogger(__name__)

Context = tuple[str, str, list[str]]  # device id, session id, columns
BURST = 0.5  # seconds of lines at max_rate that may go out at once before decimating


class LiveStream(threading.Thread):
    """Sends ``samples`` frames as lines arrive and a ``status`` message every second.

    The read loop calls ``offer`` (never blocks): chunks go into a bounded queue, and when it is full
    the chunk is dropped and counted. A chunk is sent at once when no frame left in the last ``min_gap``
    seconds (5 ms: the browser draws at 60 Hz); otherwise (a steady or fast stream) what arrives meanwhile is gathered into one frame, so
    there are at most 1/min_gap frames a second. When the web app pushes back (a send blocks), the spacing
    grows up to ``interval``. While the web app is unreachable, frames are discarded (counted) and the
    connection is retried with capped exponential backoff; outage and recovery are logged once.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        status: Callable[[], dict[str, Any]],
        interval: float = 0.05,
        max_rate: float = 10_000.0,
        max_chunks: int = 128,  # ~1.3 s of display data: older frames are useless to a viewer
        open_timeout: float = 5.0,
        min_gap: float = 0.005,
    ) -> None:
        super().__init__(name="live-stream", daemon=True)
        self.url = url
        self.token = token
        self._status = status
        self.interval = max(interval, min_gap)
        self.min_gap = min_gap
        self._gap = min_gap
        self.max_rate = max_rate
        self.open_timeout = open_timeout
        self._queue: queue.Queue[tuple[Context, list[tuple[bytes, int, float]]]] = queue.Queue(max_chunks)
        self._stopping = threading.Event()
        self._status_now = threading.Event()
        self._ws: ClientConnection | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.lines_dropped = 0
        self.connected = False
        self._frame_no = 0
        self._outage_logged = False
        self._allowance = 0.0  # lines the display rate allows right now (a token bucket, see _budget)
        self._allowance_at: float | None = None

    # -- read-loop side -----------------------------------------------------------------------------
    def offer(self, ctx: Context, chunks: list[tuple[bytes, int, float]]) -> None:
        """Hand over accepted lines: (block of comma-delimited lines, line count, Unix receive time) chunks."""
        try:
            self._queue.put_nowait((ctx, chunks))
        except queue.Full:
            self.frames_dropped += 1
            self.lines_dropped += sum(c[1] for c in chunks)

    def status_soon(self) -> None:
        """Send a status message at once (device connected/disconnected)."""
        self._status_now.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Send a last status and close the connection."""
        self._stopping.set()
        self.join(timeout)

    # -- this thread --------------------------------------------------------------------------------
    def run(self) -> None:
        """Connect, send, reconnect, until stopped."""
        backoff = 0.5
        while not self._stopping.is_set():
            ws = self._connect()
            if ws is None:
                self._discard_queued()
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            with ws:  # closed however the pump ends
                self._ws = ws
                try:
                    self._pump()
                    ws.send(status_message(**self._status()))  # stopping: a last status
                except (OSError, WebSocketException) as err:
                    self._lost(err)

    def _connect(self) -> ClientConnection | None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            ws = connect(self.url, additional_headers=headers, open_timeout=self.open_timeout,
                         close_timeout=1, max_size=2**24, compression=None)
        except InvalidStatus as err:
            self._outage(f"the web app refused the stream (HTTP {err.response.status_code}; check SENSOR_INGEST_TOKEN)")
            return None
        except (OSError, WebSocketException, TimeoutError) as err:
            self._outage(f"{type(err).__name__}: {err}")
            return None
        self.connected = True
        if self._outage_logged:
            log.warning("live stream to %s connected again", self.url)
        else:
            log.info("live stream connected to %s", self.url)
        self._outage_logged = False
        self._status_now.set()
        return ws

    def _outage(self, why: str) -> None:
        if not self._outage_logged:
            log.warning("live stream to %s unavailable: %s; recording goes on, retrying", self.url, why)
            self._outage_logged = True

    def _lost(self, err: Exception) -> None:
        self.connected = False
        self._ws = None
        self._outage(f"connection lost ({type(err).__name__}: {err})")

    def _discard_queued(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self.frames_dropped += 1

    def _pump(self) -> None:
        """Send lines as they come (coalesced while frames are closer than the gap) and a status when due."""
        next_status = 0.0
        last_frame = 0.0
        while not self._stopping.is_set():
            wait = 0.0 if self._status_now.is_set() else min(max(next_status - time.monotonic(), 0.001), 0.1)
            items: list[tuple[Context, list[tuple[bytes, int, float]]]] = []
            try:
                items.append(self._queue.get(timeout=wait))
            except queue.Empty:
                pass
            if items:
                hold = last_frame + self._gap - time.monotonic()
                if hold > 0:  # a frame left just now: gather what else arrives until the gap is over
                    self._stopping.wait(hold)
                self._drain(items)
                started = time.monotonic()
                self._send_frames(items)
                last_frame = started
                # a send that blocked means the web app is pushing back: space the frames out more
                self._gap = min(self.interval, max(self.min_gap, 2 * (time.monotonic() - started)))
            now = time.monotonic()
            if self._status_now.is_set() or now >= next_status:
                self._status_now.clear()
                self._send(status_message(**self._status()))
                next_status = now + 1.0

    def _drain(self, items: list[tuple[Context, list[tuple[bytes, int, float]]]]) -> None:
        """Move everything queued right now into ``items``."""
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _send(self, text: str) -> None:
        assert self._ws is not None
        self._ws.send(text)

    def _send_frames(self, items: list[tuple[Context, list[tuple[bytes, int, float]]]]) -> None:
        """One frame per context (session) among the items gathered."""
        start = 0
        for i in range(1, len(items) + 1):
            if i == len(items) or items[i][0] is not items[start][0]:
                self._send_frame(items[start][0], [c for _, chunks in items[start:i] for c in chunks])
                start = i

    def _budget(self) -> int:
        """Lines the display rate allows now: max_rate a second, with bursts of up to BURST seconds' worth.

        A burst (the lines a late read or a pushed-back send gathered) goes out whole, so a viewer sees no
        thinned stretch; only a device steadily faster than max_rate is decimated.
        """
        now = time.monotonic()
        cap = self.max_rate * BURST
        since = cap if self._allowance_at is None else (now - self._allowance_at) * self.max_rate
        self._allowance = min(cap, self._allowance + since)
        self._allowance_at = now
        return max(int(self._allowance), 1)

    def _send_frame(self, ctx: Context, chunks: list[tuple[bytes, int, float]]) -> None:
        """Send chunks as one samples message, keeping every k-th line above max_rate."""
        total = sum(c[1] for c in chunks)
        k = max(-(-total // self._budget()), 1)  # ceil
        parts = []
        n = 0
        skip = 0  # lines to skip at the start of the next chunk so every k-th line is kept across chunks
        for block, count, t in chunks:
            pre = b"%.6f," % t
            if k == 1:
                parts.append(pre + block[:-1].replace(b"\n", b"\n" + pre) + b"\n")
                n += count
                continue
            kept = block[:-1].split(b"\n")[skip::k]
            skip = (skip - count) % k
            if kept:
                parts.append(pre + (b"\n" + pre).join(kept) + b"\n")
                n += len(kept)
        device, session, columns = ctx
        self._allowance -= n
        self._frame_no += 1
        self._send(samples_message(device, session, self._frame_no, columns, b"".join(parts), n, k))
        self.frames_sent += 1
