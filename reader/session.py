"""One recording session on disk: its folder, manifest, batches and reject file; device lock and crash recovery."""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from kernel.batch import format_time, read_batch_names, seq_of_row
from kernel.layout import (
    MANIFEST_NAME,
    committed_batches,
    is_session_dir,
    lock_path,
    new_session_id,
    rejects_path,
    session_order,
)
from kernel.manifest import END_RECOVERED, STATE_CLOSED, SessionManifest
from reader.batches import BatchWriter, recover_session_batches
from reader.errors import DeviceBusy, DiskError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class EndCounts:
    """What the read loop counted in a session, for its final manifest."""

    rejects: int
    gaps: int
    missing: int
    lost: dict[str, int]  # by kernel.manifest.LOST_* cause
    last_seq: int | None  # the last counter read (None without a counter)
    clock: dict[str, object] | None = None  # the sample clock's kernel.manifest.ClockQuality
    ntp_synchronized: bool | None = None


class DeviceLock:
    """An exclusive lock on a device folder, held while a reader records that device."""

    def __init__(self, device_dir: Path) -> None:
        device_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(lock_path(device_dir), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(self._fd)
            raise DeviceBusy(f"another reader is already recording into {device_dir}") from err

    def release(self) -> None:
        """Release the lock."""
        os.close(self._fd)


def count_rows(path: Path) -> int:
    """Data rows in a committed batch (lines after the header)."""
    with open(path, "rb") as f:
        return max(f.read().count(b"\n") - 1, 0)


def recover_device(device_dir: Path) -> list[str]:
    """Close sessions a crashed reader left open: commit their temp batches and finalise session.json."""
    recovered = []
    if not device_dir.is_dir():
        return recovered
    for entry in sorted(device_dir.iterdir()):
        if not is_session_dir(entry):
            continue
        try:
            manifest = SessionManifest.load(entry)
        except (OSError, ValueError) as err:
            log.error("cannot read %s: %s", entry / MANIFEST_NAME, err)
            continue
        if manifest.closed:
            continue
        rows = recover_session_batches(entry)
        batches = committed_batches(entry)
        manifest.lines = sum(count_rows(b) for b in batches)
        manifest.batches = len(batches)
        manifest.state = STATE_CLOSED
        manifest.end_reason = END_RECOVERED
        manifest.ended_at = manifest.ended_at or format_time(datetime.now(UTC))
        manifest.save(entry)
        log.warning(
            "recovered session %s left open by a previous run: %d rows from its temp batch committed, %d lines in %d batches",
            entry, rows, manifest.lines, manifest.batches,
        )
        recovered.append(entry.name)
    return recovered


class PreviousSession(NamedTuple):
    """Where the device's sequence counter stood at the end of its latest session."""

    session_id: str
    end_reason: str
    last_seq: int


def previous_session(device_dir: Path) -> PreviousSession | None:
    """Where the device's counter stood when its latest session ended.

    That is the last counter the session read (session.json ``last_seq``, written at a normal end), else
    after a crash its last committed row's counter; sessions that committed nothing are passed over, adding
    the lines they counted as lost (their own gap included), so no line is counted twice.
    """
    if not device_dir.is_dir():
        return None
    names = [e.name for e in os.scandir(device_dir) if e.is_dir() and is_session_dir(Path(e.path))]
    latest: tuple[str, str] | None = None  # (session id, end reason) of the latest session
    skipped = 0  # lines counted as lost by later sessions that committed nothing
    for name in sorted(names, key=session_order, reverse=True):
        entry = device_dir / name
        try:
            manifest = SessionManifest.load(entry)
            if not manifest.closed:
                return None
            latest = latest or (name, manifest.end_reason or "")
            if manifest.last_seq is not None:
                return PreviousSession(latest[0], latest[1], manifest.last_seq + skipped)
            batches = committed_batches(entry)
            if not batches:
                skipped += sum(manifest.lost.values())
                continue  # nothing committed: the counter stood where an earlier session left it
            last_seq = seq_of_row(_last_line(batches[-1]), read_batch_names(batches[-1]))
            if last_seq is None:
                return None
        except (OSError, ValueError, IndexError) as err:
            log.warning("cannot read where session %s ended: %s", entry, err)
            return None
        return PreviousSession(latest[0], latest[1], last_seq + skipped)
    return None


def _last_line(path: Path) -> bytes:
    """The last line of a file (read from its end)."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(size - 65536, 0))
        return f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]


def _remove_empty_session(session_dir: Path) -> None:
    """Remove a session folder that got no manifest (and its manifest's temp file)."""
    try:
        for leftover in session_dir.iterdir():
            leftover.unlink()
        session_dir.rmdir()
    except OSError:
        pass


class SessionFiles:
    """Writes one session's folder. Used from the disk-writer thread only."""

    def __init__(self, device_dir: Path, manifest_fields: dict, batch_lines: int, batch_seconds: float) -> None:
        now = datetime.now(UTC)
        self.dir = device_dir / new_session_id(now, device_dir)
        self.dir.mkdir(parents=True)
        self.manifest = SessionManifest(
            session_id=self.dir.name, started_at=format_time(now), columns=[], **manifest_fields
        )
        try:
            self.manifest.save(self.dir)
        except OSError:
            _remove_empty_session(self.dir)  # a retry makes a new one: leave no empty folders behind
            raise
        self.batch_lines = batch_lines
        self.batch_seconds = batch_seconds
        self.writer: BatchWriter | None = None
        self._rejects_fd: int | None = None
        self._pending_rejects: list[tuple[bytes, int]] = []  # (records, how many)
        self._columns_saved = False

    def set_columns(self, columns: list[str]) -> None:
        """Fix the session's columns (before its first rows); session.json learns them at the first commit."""
        self.manifest.columns = columns
        self.writer = BatchWriter(self.dir, columns, self.batch_lines, self.batch_seconds)

    def add_rows(self, rows: bytes, count: int, now: float) -> None:
        """Append accepted rows (timestamped)."""
        assert self.writer is not None, "columns must be set before rows"
        self.writer.add(rows, count, now)
        self._save_columns()
        if self.writer.error is not None:
            err = self.writer.error
            raise DiskError(err.errno, f"cannot write batch in {self.dir}: {err.strerror}") from err

    def add_rejects(self, records: bytes, count: int) -> None:
        """Append ``count`` reject records; kept in memory while the disk refuses them."""
        self._pending_rejects.append((records, count))
        self._flush_rejects()

    def _flush_rejects(self) -> None:
        try:
            if self._rejects_fd is None:
                self._rejects_fd = os.open(rejects_path(self.dir), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            while self._pending_rejects:
                records = self._pending_rejects[0][0]
                written = os.write(self._rejects_fd, records)
                if written < len(records):  # a short write (disk just filled): the rest stays pending
                    self._pending_rejects[0] = (records[written:], self._pending_rejects[0][1])
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self._pending_rejects.pop(0)
        except OSError as err:
            raise DiskError(err.errno, f"cannot write {rejects_path(self.dir)}: {err.strerror}") from err

    @property
    def pending_bytes(self) -> int:
        """Bytes held in memory, not yet committed."""
        return (self.writer.pending_bytes if self.writer else 0) + sum(len(r) for r, _ in self._pending_rejects)

    def drop_pending(self) -> tuple[int, int]:
        """Forget what memory holds (it cannot be saved): returns (lines, reject records) dropped."""
        lines = self.writer.drop_pending() if self.writer else 0
        rejects = sum(n for _, n in self._pending_rejects)
        self._pending_rejects = []
        return lines, rejects

    def tick(self, now: float) -> None:
        """Commit the open batch when it is old enough."""
        if self.writer is not None and self.writer.due(now):
            self.commit()

    def commit(self) -> None:
        """Commit everything accepted so far, rejects included."""
        if self._rejects_fd is not None:
            os.fsync(self._rejects_fd)
        if self.writer is not None:
            self.writer.commit()
            self._save_columns()

    def _save_columns(self) -> None:
        """After the first commit, record the columns in session.json (off the start-up path)."""
        if self._columns_saved or self.writer is None or not self.writer.committed_count:
            return
        try:
            self.manifest.save(self.dir)
        except OSError as err:
            raise DiskError(err.errno, f"cannot update {self.dir / MANIFEST_NAME}: {err.strerror}") from err
        self._columns_saved = True

    def save_lost(self, lost: dict[str, int]) -> None:
        """Record lost counts in session.json while the session is open (kept by crash recovery)."""
        self.manifest.lost = {cause: n for cause, n in sorted(lost.items()) if n}
        try:
            self.manifest.save(self.dir)
        except OSError as err:
            raise DiskError(err.errno, f"cannot update {self.dir / MANIFEST_NAME}: {err.strerror}") from err

    def retry(self) -> None:
        """After a disk error: write what memory holds."""
        self._flush_rejects()
        if self.writer is not None:
            self.writer.retry()
            if self.writer.error is not None:
                err = self.writer.error
                raise DiskError(err.errno, f"still cannot write in {self.dir}: {err.strerror}") from err

    def close(self, reason: str, counts: EndCounts) -> None:
        """Commit the partial batch and finalise session.json with the read loop's counts."""
        self._flush_rejects()
        self.commit()
        if self._rejects_fd is not None:
            os.close(self._rejects_fd)
            self._rejects_fd = None
        m = self.manifest
        m.state, m.end_reason = STATE_CLOSED, reason
        m.ended_at = format_time(datetime.now(UTC))
        m.lines = self.writer.committed_lines if self.writer else 0
        m.batches = self.writer.committed_count if self.writer else 0
        m.rejects, m.gaps, m.missing = counts.rejects, counts.gaps, counts.missing
        m.lost = {cause: n for cause, n in sorted(counts.lost.items()) if n}
        m.last_seq = counts.last_seq
        m.clock, m.ntp_synchronized = counts.clock, counts.ntp_synchronized
        m.save(self.dir)

    def abandon(self) -> None:
        """Give up without finalising (process dying): temp files stay for recovery."""
        if self.writer is not None:
            self.writer.abandon()
