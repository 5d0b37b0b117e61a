"""Atomic batch files: append to a temp file, commit with fsync + rename + directory fsync; crash recovery."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kernel.atomic import commit_file
from kernel.batch import batch_header
from kernel.layout import (
    batch_filename,
    batch_index,
    committed_batches,
    committed_path,
    part_path,
    partial_batches,
)
from reader.errors import DiskError

log = logging.getLogger(__name__)


class _Batch:
    """One batch: its rows in memory until committed, and its temp file while writing through works."""

    def __init__(self, index: int, opened_at: float) -> None:
        self.index = index
        self.opened_at = opened_at
        self.chunks: list[bytes] = []
        self.lines = 0
        self.size = 0
        self.fd: int | None = None

    def close_fd(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


class BatchWriter:
    """Writes one session's batches. Rows are written through to a temp file and also held in memory
    until their batch is committed, so a disk error (full disk, I/O error) loses nothing: the batch is
    rewritten from memory when the disk works again."""

    def __init__(self, session_dir: Path, columns: list[str], batch_lines: int, batch_seconds: float) -> None:
        self.session_dir = session_dir
        self.header = batch_header(columns, sample_time=True)
        self.batch_lines = batch_lines
        self.batch_seconds = batch_seconds
        existing = committed_batches(session_dir)
        self._next_index = (batch_index(existing[-1].name) or 0) + 1 if existing else 1
        self.committed_lines = 0
        self.committed_count = 0
        self.error: OSError | None = None
        self._sealed: list[_Batch] = []  # full batches waiting to be committed (disk trouble)
        self._open: _Batch | None = None

    @property
    def pending_lines(self) -> int:
        """Lines accepted but not yet committed."""
        return sum(b.lines for b in self._batches())

    @property
    def pending_bytes(self) -> int:
        """Bytes held in memory for batches not yet committed."""
        return sum(b.size for b in self._batches())

    def _batches(self) -> list[_Batch]:
        return self._sealed + ([self._open] if self._open else [])

    def _temp_path(self, batch: _Batch) -> Path:
        return part_path(self.session_dir / batch_filename(batch.index))

    def add(self, rows: bytes, count: int, now: float) -> None:
        """Append timestamped rows, committing each batch that fills; DiskError leaves them all in memory."""
        while count:
            if self._open is None:
                self._open = _Batch(self._next_index, now)
                self._next_index += 1
            batch = self._open
            room = self.batch_lines - batch.lines
            part, part_count = rows, count
            if count > room:
                cut = _after_nth_newline(rows, room)
                part, part_count = rows[:cut], room
            batch.chunks.append(part)
            batch.lines += part_count
            batch.size += len(part)
            if self.error is None:
                self._write_through(batch, part)
            rows, count = rows[len(part) :], count - part_count
            if batch.lines >= self.batch_lines:
                self._sealed.append(batch)
                self._open = None
        if self._sealed and self.error is None:
            self._drain()

    def due(self, now: float) -> bool:
        """True when the open batch is older than batch_seconds."""
        return self._open is not None and now - self._open.opened_at >= self.batch_seconds

    def commit(self) -> None:
        """Commit everything accepted so far (the open batch too); raises DiskError if the disk refuses."""
        if self._open is not None and self._open.lines:
            self._sealed.append(self._open)
            self._open = None
        if self.error is not None:
            raise DiskError(self.error.errno, f"data disk unavailable: {self.error.strerror}") from self.error
        self._drain()

    def retry(self) -> None:
        """After a disk error: try again to commit the sealed batches and resume writing through."""
        self.error = None
        self._drain()
        if self._open is not None and self._open.fd is None:
            try:
                self._start_file(self._open)
            except OSError as err:
                self._fail(self._open, err)

    def drop_pending(self) -> int:
        """Forget every row not committed (they cannot be saved); returns how many lines that was."""
        lines = self.pending_lines
        for batch in self._batches():
            batch.close_fd()
            try:
                self._temp_path(batch).unlink(missing_ok=True)
            except OSError:
                pass
        self._sealed, self._open = [], None
        self.error = None
        return lines

    def abandon(self) -> None:
        """Close files without committing (a temp file stays for crash recovery)."""
        for batch in self._batches():
            batch.close_fd()

    def _write_through(self, batch: _Batch, part: bytes) -> None:
        try:
            if batch.fd is None:
                self._start_file(batch)
            else:
                _write_all(batch.fd, part)
        except OSError as err:
            self._fail(batch, err)

    def _start_file(self, batch: _Batch) -> None:
        batch.fd = os.open(self._temp_path(batch), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        _write_all(batch.fd, self.header)
        for chunk in batch.chunks:
            _write_all(batch.fd, chunk)

    def _fail(self, batch: _Batch, err: OSError) -> None:
        """Drop the temp file (its rows are in memory) and remember the error."""
        batch.close_fd()
        try:
            self._temp_path(batch).unlink(missing_ok=True)
        except OSError:
            pass
        self.error = err

    def _drain(self) -> None:
        while self._sealed:
            batch = self._sealed[0]
            try:
                if batch.fd is None:
                    self._start_file(batch)
                os.fsync(batch.fd)  # type: ignore[arg-type]
                os.close(batch.fd)  # type: ignore[arg-type]
                batch.fd = None
                commit_file(self._temp_path(batch), self.session_dir / batch_filename(batch.index))
            except OSError as err:
                self._fail(batch, err)
                raise DiskError(err.errno, f"cannot commit batch in {self.session_dir}: {err.strerror}") from err
            self._sealed.pop(0)
            self.committed_lines += batch.lines
            self.committed_count += 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _after_nth_newline(data: bytes, n: int) -> int:
    pos = -1
    for _ in range(n):
        pos = data.index(b"\n", pos + 1)
    return pos + 1


def recover_partial(path: Path) -> int:
    """Commit the complete lines of a temp batch left by a crash; return the rows saved (0: file removed)."""
    final = committed_path(path)
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    header_end = data.find(b"\n") + 1
    rows = data[header_end:end].count(b"\n") if header_end else 0
    if rows == 0:
        path.unlink()
        return 0
    with open(path, "r+b") as f:
        f.truncate(end)
        f.flush()
        os.fsync(f.fileno())
    commit_file(path, final)
    return rows


def recover_session_batches(session_dir: Path) -> int:
    """Recover every temp batch of a session folder; return the rows committed."""
    return sum(recover_partial(p) for p in partial_batches(session_dir))
