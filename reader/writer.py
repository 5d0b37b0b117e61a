"""The disk-writer thread: the only thread touching a session's files, so fsync never stalls the port."""

from __future__ import annotations

import collections
import dataclasses
import errno
import logging
import threading
import time
from collections.abc import Callable

from kernel.manifest import LOST_BUFFER, LOST_DISK_ERROR, LOST_DISK_FULL
from reader.errors import DiskError
from reader.reserve import DiskReserve
from reader.session import EndCounts, SessionFiles

log = logging.getLogger(__name__)

CLOSE_RETRY = 0.5  # seconds between attempts while a stop or unplug waits for the disk


@dataclasses.dataclass(frozen=True)
class Columns:
    """Queue item: the session's columns (once, before the first rows)."""

    columns: list[str]


@dataclasses.dataclass(frozen=True)
class Rows:
    """Queue item: ``count`` timestamped rows."""

    rows: bytes
    count: int


@dataclasses.dataclass(frozen=True)
class Rejects:
    """Queue item: ``count`` reject records."""

    records: bytes
    count: int


@dataclasses.dataclass(frozen=True)
class SaveLost:
    """Queue item: write the lost counts to session.json now."""


@dataclasses.dataclass(frozen=True)
class Close:
    """Queue item: finish the session."""

    reason: str
    counts: EndCounts


Item = Columns | Rows | Rejects | SaveLost | Close


def _cause(err: BaseException | None) -> str:
    """The lost-line cause for a disk error."""
    return LOST_DISK_FULL if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT) else LOST_DISK_ERROR


class DiskWriter(threading.Thread):
    """Takes rows and rejects from the read loop through a queue and writes them to the session's files.

    Memory is bounded: while the disk refuses writes, accepted rows wait in memory up to ``max_buffer``
    bytes; beyond that new rows are dropped and counted in ``lost`` (a critical log says so). A close
    (stop, unplug) keeps retrying for ``stop_timeout`` seconds, then releases the disk ``reserve`` to
    commit what memory holds; whatever still cannot be written is counted in ``lost`` by cause.
    """

    def __init__(
        self,
        open_session: Callable[[], SessionFiles],
        max_buffer: int,
        retry_seconds: float = 2.0,
        *,
        reserve: DiskReserve | None = None,
        stop_timeout: float = 15.0,
        lost: dict[str, int] | None = None,
    ) -> None:
        super().__init__(name="disk-writer", daemon=True)
        self._open_session = open_session
        self.session: SessionFiles | None = None
        self.max_buffer = max_buffer
        self.retry_seconds = retry_seconds
        self.reserve = reserve
        self.stop_timeout = stop_timeout
        self.lost: dict[str, int] = lost if lost is not None else {}  # by cause; shared with the read loop
        self._overflowing = False
        self._closing = False
        self._items: collections.deque[Item] = collections.deque()
        self._cond = threading.Condition()
        self._queued_bytes = 0
        self._held_bytes = 0
        self.disk_error: str | None = None
        self.heartbeat = time.monotonic()
        self._closed = threading.Event()
        self.started = threading.Event()  # set once the first attempt to create the session folder is over
        self.close_error: str | None = None

    # -- producer side (read loop) ------------------------------------------------------------------
    @property
    def lost_lines(self) -> int:
        """Lines lost so far, all causes."""
        return sum(self.lost.values())

    def _add_lost(self, cause: str, count: int) -> None:
        self.lost[cause] = self.lost.get(cause, 0) + count

    @property
    def buffered_bytes(self) -> int:
        """Bytes waiting in the queue or held in memory by the session."""
        return self._queued_bytes + self._held_bytes

    def submit_columns(self, columns: list[str]) -> None:
        """Set the session's columns (once, before the first rows)."""
        self._put(Columns(columns), 0)

    def submit_rows(self, rows: bytes, count: int) -> bool:
        """Queue timestamped rows; False (and counted as lost) when the memory budget is exhausted."""
        if self.buffered_bytes + len(rows) > self.max_buffer:
            self._overflow(count)
            return False
        self._put(Rows(rows, count), len(rows))
        return True

    def submit_rejects(self, records: bytes, count: int) -> bool:
        """Queue ``count`` reject records for the reject file; False (counted as lost) when memory is full."""
        if self.buffered_bytes + len(records) > self.max_buffer:
            self._overflow(count)
            return False
        self._put(Rejects(records, count), len(records))
        return True

    def save_lost(self) -> None:
        """Write the lost counts to session.json now (a counter gap found at start survives a later crash)."""
        self._put(SaveLost(), 0)

    def _overflow(self, count: int) -> None:
        if not self._overflowing:
            self._overflowing = True
            log.critical(
                "memory buffer for the unwritable data disk is full (%d bytes): dropping lines (counted as %s) "
                "until it recovers", self.max_buffer, LOST_BUFFER,
            )
        self._add_lost(LOST_BUFFER, count)

    def close(self, reason: str, counts: EndCounts, timeout: float) -> bool:
        """Ask to finish the session (partial batch committed, manifest final); see ``wait_closed``."""
        self._closing = True
        self._put(Close(reason, counts), 0)
        return self.wait_closed(timeout)

    def wait_closed(self, timeout: float) -> bool:
        """Wait for the close; False if it failed or is still going on after ``timeout``."""
        return self._closed.wait(timeout) and self.close_error is None

    @property
    def closed(self) -> bool:
        """True once the close is over (successful or not)."""
        return self._closed.is_set()

    def _put(self, item: Item, size: int) -> None:
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
        else:
            self._ensure_reserve()
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
                if self._closing:
                    if item is not None:
                        self._items.appendleft(item)
                    if not self._open_for_close():
                        return
                    continue
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

    def _handle(self, item: Item) -> bool:
        """Apply one queue item to the session; True once the session is closed."""
        assert self.session is not None
        if isinstance(item, Rows):
            self._queued_bytes -= len(item.rows)
            self.session.add_rows(item.rows, item.count, time.monotonic())
        elif isinstance(item, Rejects):
            self._queued_bytes -= len(item.records)
            self.session.add_rejects(item.records, item.count)
        elif isinstance(item, Columns):
            self.session.set_columns(item.columns)
        elif isinstance(item, SaveLost):
            self.session.save_lost(dict(self.lost))
        else:
            self._finish(item.reason, item.counts)
            return True
        return False

    def _finish(self, reason: str, counts: EndCounts) -> None:
        """Close the session; while the disk refuses, retry until the stop timeout, then use the reserve."""
        assert self.session is not None
        deadline = time.monotonic() + self.stop_timeout
        err = self._try_close(reason, counts)
        if err is not None:
            log.critical("cannot finish session %s (%s): retrying for up to %.0f s", self.session.dir.name, err,
                         self.stop_timeout)
        while err is not None and time.monotonic() < deadline:
            time.sleep(min(CLOSE_RETRY, max(deadline - time.monotonic(), 0.0)))
            self.heartbeat = time.monotonic()
            err = self._try_close(reason, counts)
        if err is not None and self._use_reserve():
            err = self._try_close(reason, counts)
        if err is not None:
            lines, rejects = self.session.drop_pending()
            cause = _cause(err)
            self._add_lost(cause, lines + rejects)
            log.critical("session %s: %d lines and %d rejected lines held in memory cannot be saved (%s); "
                         "counted as lost (%s)", self.session.dir.name, lines, rejects, err, cause)
            err = self._try_close(reason, counts)
        if err is not None:
            self.close_error = str(err)
            self.session.abandon()
            log.critical("could not finalise session %s (%s); lost lines by cause: %s", self.session.dir, err,
                         self.lost or "none")
        else:
            self.disk_error = None
        self._closed.set()

    def _try_close(self, reason: str, counts: EndCounts) -> OSError | None:
        assert self.session is not None
        try:
            if self.disk_error is not None:
                self.session.retry()
            self.session.close(reason, dataclasses.replace(counts, lost=dict(self.lost)))
        except OSError as err:
            self.disk_error = str(err)
            return err
        return None

    def _use_reserve(self) -> bool:
        """Give the disk reserve back so that what memory holds can be committed; True if it freed space."""
        freed = self.reserve.release() if self.reserve is not None else 0
        if freed:
            log.warning("the data disk is still refusing writes: released the %.1f MB reserve to commit what "
                        "memory holds", freed / 2**20)
        return freed > 0

    def _open_for_close(self) -> bool:
        """A close while the session folder could not be created: keep trying, then use the reserve.

        Returns True once the session exists (the queued rows and the close then go through as usual);
        else everything queued is counted as lost and the close fails.
        """
        deadline = time.monotonic() + self.stop_timeout
        reserve_used = False
        while True:
            try:
                self.session = self._open_session()
                return True
            except OSError as err:
                if time.monotonic() < deadline:
                    time.sleep(CLOSE_RETRY)
                    self.heartbeat = time.monotonic()
                    continue
                if not reserve_used and self._use_reserve():
                    reserve_used = True
                    continue
                with self._cond:
                    items, self._items = list(self._items), collections.deque()
                dropped = sum(i.count for i in items if isinstance(i, (Rows, Rejects)))
                self._add_lost(_cause(err), dropped)
                self.close_error = str(err)
                log.critical("no session folder could be created (%s): %d lines counted as lost", err, dropped)
                self._closed.set()
                return False

    def _ensure_reserve(self) -> None:
        if self.reserve is not None:
            self.reserve.ensure()

    def _failed(self, err: DiskError) -> None:
        if self.disk_error is None:
            log.critical(
                "data disk error: %s; keeping up to %d MB in memory and retrying every %.0f s",
                err, self.max_buffer // 2**20, self.retry_seconds,
            )
        self.disk_error = str(err)

    def _recovered(self) -> None:
        if self.disk_error is not None:
            log.warning("data disk writable again; recording resumed (lost so far, by cause: %s)",
                        self.lost or "none")
            self._ensure_reserve()
        self.disk_error = None
        self._overflowing = False
