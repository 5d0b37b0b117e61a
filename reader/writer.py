"""The disk-writer thread: the only thread touching a session's files, so fsync never stalls the port."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from reader.batches import DiskError
from reader.session import SessionFiles

log = logging.getLogger(__name__)


class DiskWriter(threading.Thread):
    """Takes rows and rejects from the read loop through a queue and writes them to the session's files.

    Memory is bounded: while the disk refuses writes, accepted rows wait in memory up to ``max_buffer``
    bytes; beyond that new rows are dropped and counted in ``lost_lines`` (a critical log says so).
    """

    def __init__(
        self, open_session: Callable[[], SessionFiles], max_buffer: int, retry_seconds: float = 2.0
    ) -> None:
        super().__init__(name="disk-writer", daemon=True)
        self._open_session = open_session
        self.session: SessionFiles | None = None
        self.max_buffer = max_buffer
        self.retry_seconds = retry_seconds
        self._items: collections.deque[tuple] = collections.deque()
        self._cond = threading.Condition()
        self._queued_bytes = 0
        self._held_bytes = 0
        self.lost_lines = 0
        self.disk_error: str | None = None
        self.heartbeat = time.monotonic()
        self._closed = threading.Event()
        self.started = threading.Event()  # set once the first attempt to create the session folder is over
        self.close_error: str | None = None

    # -- producer side (read loop) ------------------------------------------------------------------
    @property
    def buffered_bytes(self) -> int:
        """Bytes waiting in the queue or held in memory by the session."""
        return self._queued_bytes + self._held_bytes

    def submit_columns(self, columns: list[str]) -> None:
        """Set the session's columns (once, before the first rows)."""
        self._put(("columns", columns), 0)

    def submit_rows(self, rows: bytes, count: int) -> bool:
        """Queue timestamped rows; False (and counted as lost) when the memory budget is exhausted."""
        if self.buffered_bytes + len(rows) > self.max_buffer:
            if not self.lost_lines:
                log.critical(
                    "memory buffer for the unwritable data disk is full (%d bytes): dropping lines until it recovers",
                    self.max_buffer,
                )
            self.lost_lines += count
            return False
        self._put(("rows", rows, count), len(rows))
        return True

    def submit_rejects(self, records: bytes) -> None:
        """Queue reject records for the reject file."""
        if self.buffered_bytes + len(records) <= self.max_buffer:
            self._put(("rejects", records), len(records))

    def close(self, reason: str, counts: dict[str, int], timeout: float) -> bool:
        """Finish the session (partial batch committed, manifest final); False if that failed or timed out."""
        self._put(("close", reason, counts), 0)
        return self._closed.wait(timeout) and self.close_error is None

    def _put(self, item: tuple, size: int) -> None:
        with self._cond:
            self._items.append(item)
            self._queued_bytes += size
            self._cond.notify()

    # -- consumer side (this thread) ----------------------------------------------------------------
    def run(self) -> None:
        """Write until the session is closed."""
        try:
            self.session = self._open_session()
        except OSError as err:
            log.critical("cannot create the session folder: %s", err)
            self.disk_error = str(err)
            self.session = None
        self.started.set()
        next_retry = 0.0
        while True:
            with self._cond:
                if not self._items:
                    self._cond.wait(0.25)
                item = self._items.popleft() if self._items else None
            now = time.monotonic()
            self.heartbeat = now
            if self.session is None:
                if item is not None and item[0] == "close":
                    self.close_error = self.disk_error
                    self._closed.set()
                    return
                if now >= next_retry:
                    next_retry = now + self.retry_seconds
                    try:
                        self.session = self._open_session()
                        self._recovered()
                    except OSError:
                        pass
                if item is not None:
                    self._items.appendleft(item)  # keep it until the session exists
                    with self._cond:
                        self._cond.wait(0.25)
                continue
            if self.disk_error is not None and now >= next_retry:
                next_retry = now + self.retry_seconds
                try:
                    self.session.retry()
                    self._recovered()
                except DiskError:
                    pass
            try:
                if item is not None and self._handle(item):
                    return
                if self.disk_error is None:
                    self.session.tick(now)
            except DiskError as err:
                if self.disk_error is None:
                    next_retry = now + self.retry_seconds
                self._failed(err)
            self._held_bytes = self.session.pending_bytes

    def _handle(self, item: tuple) -> bool:
        kind = item[0]
        assert self.session is not None
        if kind == "rows":
            self._queued_bytes -= len(item[1])
            self.session.add_rows(item[1], item[2], time.monotonic())
        elif kind == "rejects":
            self._queued_bytes -= len(item[1])
            self.session.add_rejects(item[1])
        elif kind == "columns":
            self.session.set_columns(item[1])
        elif kind == "close":
            self._finish(item[1], item[2])
            return True
        return False

    def _finish(self, reason: str, counts: dict[str, int]) -> None:
        assert self.session is not None
        try:
            self.session.close(reason, counts)
        except OSError as err:
            self.close_error = str(err)
            self.session.abandon()
            log.critical(
                "could not finalise session %s (%s): its data stays in the temp file for recovery at next start",
                self.session.dir, err,
            )
        self._closed.set()

    def _failed(self, err: DiskError) -> None:
        if self.disk_error is None:
            log.critical(
                "data disk error: %s; keeping up to %d MB in memory and retrying every %.0f s",
                err, self.max_buffer // 2**20, self.retry_seconds,
            )
        self.disk_error = str(err)

    def _recovered(self) -> None:
        if self.disk_error is not None:
            log.warning("data disk writable again; recording resumed (%d lines were lost meanwhile)", self.lost_lines)
        self.disk_error = None
