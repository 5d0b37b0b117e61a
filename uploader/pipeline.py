"""The work behind the Luigi tasks: Dask processing, concurrent verified uploads, session publishing.

A Pipeline lives as long as the daemon: its Dask process pool and upload thread pool are created once
and reused by every pass (process start-up would otherwise dominate small passes).

Read-ahead: Luigi runs one task at a time, so a pass alternates "process chunk k" and "upload chunk k".
When a processing call returns, the pipeline already starts processing the next planned chunk in the
background, so the Dask workers convert chunk k+1 while the upload threads send chunk k. The DAG is
unchanged: a ProcessBatch task is still complete only when its markers exist, and it waits for the
read-ahead of its batches (or redoes whatever the read-ahead could not do, reporting the error).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from kernel.layout import MANIFEST_NAME, committed_batches
from kernel.manifest import SessionManifest
from kernel.objects import MANIFEST_CONTENT_TYPE, META_BOX, object_key
from kernel.upload_state import (
    ProcessedBatch,
    ProcessingFailure,
    TouchedMarker,
    UploadedMarker,
    staged_leftovers,
    staging_dir,
    stats_path,
)
from uploader.child import init_child
from uploader.convert import digests, process_batch
from uploader.envelope import publish_envelope
from uploader.errors import BatchError, Stopped, UploaderError
from uploader.manifest import batch_entry, session_document
from uploader.s3 import S3Store
from uploader.settings import Settings
from uploader.upload import Job, Outcome, Sender, group_size, job_for, send_group, sender_for

log = logging.getLogger(__name__)


def _spawn_pool(processes: int) -> ProcessPoolExecutor:
    """A pool of spawned workers (no fork of a threaded parent) that ignore SIGTERM and die with us."""
    return ProcessPoolExecutor(
        max_workers=processes, mp_context=multiprocessing.get_context("spawn"), initializer=init_child
    )


class Pipeline:
    """Long-lived context of upload passes: settings, S3 store, process pool, upload threads, counters."""

    def __init__(self, settings: Settings, stop: threading.Event | None = None, store: S3Store | None = None):
        self.settings = settings
        self.stop = stop or threading.Event()
        self._store = store
        self._store_lock = threading.Lock()
        self._pool_lock = threading.Lock()  # the read-ahead thread uses the Dask pool too
        self._procs: ProcessPoolExecutor | None = None
        self._senders: ProcessPoolExecutor | ThreadPoolExecutor | None = None
        self._local_sender: Sender | None = None
        self._listed: dict[Path, dict[str, dict[str, Any]] | None] = {}
        self._marked: dict[Path, UploadedMarker] = {}  # uploaded markers written in this pass
        self._background: ThreadPoolExecutor | None = None  # runs the read-ahead Dask call
        self.read_ahead = True
        self._planned: list[Path] = []  # the running pass's batches, in plan order
        self._cursor = 0  # planned batches before this one were handed to Dask already
        self._claimed: set[Path] = set()
        self._ahead: tuple[Future[list[ProcessedBatch | ProcessingFailure]], set[Path]] | None = None
        self._stats_cache: dict[Path, tuple[tuple[int, int, int], ProcessedBatch]] = {}
        self.progress: Any = None
        # Called after each piece of real progress (a Dask call done, an upload verified): the service sends
        # WATCHDOG=1 from it, so long passes keep the watchdog fed and a hung request starves it.
        self.heartbeat: Callable[[], None] = lambda: None
        self.errors: list[UploaderError] = []
        self.uploaded = 0
        self.uploaded_bytes = 0
        self.skipped = 0
        self.last_upload: float | None = None
        self.timing = {
            "process_calls": 0,
            "process_batches": 0,
            "process_wall": 0.0,
            "process_work": 0.0,
            "upload_wall": 0.0,
        }

    @property
    def store(self) -> S3Store:
        """The S3 store, created on first use."""
        with self._store_lock:
            if self._store is None:
                self._store = S3Store(self.settings)
            return self._store

    def _pool(self) -> ProcessPoolExecutor:
        """The Dask process pool."""
        with self._pool_lock:
            if self._procs is None:
                self._procs = _spawn_pool(self.settings.workers)
            return self._procs

    def close(self) -> None:
        """Shut the pools down (in-flight work finishes first)."""
        self.end_pass()
        if self._background is not None:
            self._background.shutdown(wait=True)
            self._background = None
        if self._senders is not None:
            self._senders.shutdown(wait=True, cancel_futures=True)
            self._senders = None
        if self._procs is not None:
            self._procs.shutdown(wait=True, cancel_futures=True)
            self._procs = None

    def check_stop(self) -> None:
        """Raise Stopped when a stop was requested."""
        if self.stop.is_set():
            raise Stopped("stop requested")

    # --- processing ---------------------------------------------------------------------------------

    def begin_pass(self, batches: list[Path]) -> None:
        """Remember the pass's batches (plan order): the read-ahead takes the next ones from here."""
        self.end_pass()
        self._planned, self._cursor, self._claimed = list(batches), 0, set()

    def end_pass(self) -> None:
        """Wait for a read-ahead still running (its results are on disk) and forget the plan."""
        if self._ahead is not None:
            self._collect_ahead()
        self._planned, self._cursor, self._claimed = [], 0, set()
        self._stats_cache.clear()
        self._listed.clear()
        self._marked.clear()

    def stats(self, batch: Path) -> ProcessedBatch | None:
        """The batch's processed marker (parsed once per version of the file), or None."""
        path = stats_path(batch)
        try:
            st = path.stat()
        except OSError:
            self._stats_cache.pop(path, None)
            return None
        version = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._stats_cache.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        info = ProcessedBatch.load(path)
        if info is not None:
            self._stats_cache[path] = (version, info)
        return info

    def processed(self, batch: Path) -> bool:
        """The batch has a stats marker for the configured format (or its raw fallback) and its object file."""
        info = self.stats(batch)
        if info is None:
            return False
        fmt_ok = info.format == self.settings.upload_format or not info.valid
        return fmt_ok and Path(info.object_file).exists()

    def process(self, batches: list[Path]) -> None:
        """Validate, describe and convert those of the batches not yet processed, in one Dask call."""
        self.check_stop()
        started = time.perf_counter()
        if self._ahead is not None and (self._ahead[0].done() or not self._ahead[1].isdisjoint(batches)):
            self._collect_ahead()  # finished, or holding some of these: let it finish them
        batches = [b for b in batches if not self.processed(b)]
        self._claimed.update(batches)
        results = self._compute(batches) if batches else []
        self.heartbeat()
        if batches:
            self.timing["process_calls"] += 1
            self.timing["process_batches"] += len(batches)
        self.timing["process_wall"] += time.perf_counter() - started
        self._start_read_ahead()
        failed = []
        for r in results:
            if isinstance(r, ProcessingFailure):
                failed.append(BatchError(f"processing {r.batch}: {r.error}"))
                continue
            self.timing["process_work"] += r.seconds
            if not r.valid:
                log.error("%s: %s; uploading the original CSV as is", r.name, r.error)
        self._fail_if(failed)

    def _compute(self, batches: list[Path]) -> list[ProcessedBatch | ProcessingFailure]:
        """One Dask bag over the process pool: process_batch for each batch."""
        import dask.bag as db

        fmt = self.settings.upload_format
        args = [(str(b), fmt, str(staging_dir(b.parent))) for b in batches]
        nparts = max(1, min(len(args), self.settings.workers * 2))
        bag = db.from_sequence(args, npartitions=nparts).starmap(process_batch)
        for attempt in (1, 2):
            pool = self._pool()
            try:
                return list(bag.compute(scheduler="processes", pool=pool))
            except BrokenProcessPool as err:  # a worker was killed (OOM killer, kill -9): start a fresh pool
                with self._pool_lock:
                    if self._procs is pool:
                        self._procs = None
                pool.shutdown(wait=False, cancel_futures=True)
                if attempt == 2:
                    raise BatchError(f"Dask worker processes keep dying: {err}") from err
                log.warning("a Dask worker process died; starting new ones")
        raise AssertionError("unreachable")

    def _start_read_ahead(self) -> None:
        """Start processing the next planned chunk in the background (one read-ahead at a time)."""
        if not self.read_ahead or self._ahead is not None or self.stop.is_set():
            return
        chunk: list[Path] = []
        while self._cursor < len(self._planned) and len(chunk) < self.settings.chunk:
            b = self._planned[self._cursor]
            self._cursor += 1
            if b not in self._claimed and not self.processed(b):
                chunk.append(b)
        if not chunk:
            return
        if self._background is None:
            self._background = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
        self._claimed.update(chunk)
        self._ahead = (self._background.submit(self._compute, chunk), set(chunk))

    def _collect_ahead(self) -> None:
        """Wait for the read-ahead; failures are left for the batch's own ProcessBatch to redo and report."""
        assert self._ahead is not None
        future, _ = self._ahead
        self._ahead = None
        try:
            results = future.result()
        except Exception as err:  # noqa: BLE001 - e.g. a broken pool: the synchronous path retries and reports
            log.debug("read-ahead failed (%s); its batches are processed again", err)
            return
        self.timing["process_work"] += sum(r.seconds for r in results if isinstance(r, ProcessedBatch))

    # --- uploading ----------------------------------------------------------------------------------

    def _sender_pool(self) -> ProcessPoolExecutor | ThreadPoolExecutor:
        """Where upload groups run: spawned sender processes, or threads of the daemon (upload_processes=0)."""
        if self._senders is None:
            if self.settings.upload_processes:
                self._senders = _spawn_pool(self.settings.upload_processes)
            else:
                self._senders = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="upload")
        return self._senders

    def _submit(self, group: list[Job]) -> Future[list[Outcome]]:
        """Hand one group to a sender (a fresh sender pool if a sender process was killed)."""
        pool = self._sender_pool()
        if isinstance(pool, ProcessPoolExecutor):
            try:
                return pool.submit(send_group, self.settings, group)
            except BrokenProcessPool:
                log.warning("a sender process died; starting new ones")
                self._reset_senders()
                return self._sender_pool().submit(send_group, self.settings, group)
        self._local_sender = sender_for(self._local_sender, self.settings, threads=1)
        return pool.submit(self._local_sender.run, group)

    def upload_many(self, batches: list[Path]) -> None:
        """Upload batches concurrently; on stop, queued uploads are dropped and in-flight ones finish."""
        self.check_stop()
        started = time.perf_counter()
        listings = self._listings(batches)
        failed: list[UploaderError] = []
        jobs = []
        for b in batches:
            info = self.stats(b)
            if info is None:
                failed.append(BatchError(f"{b}: not processed"))
            else:
                jobs.append(job_for(self.settings, b, info, listings.get(b.parent)))
        size = group_size(self.settings, len(jobs))
        finished: queue.SimpleQueue[Future[list[Outcome]]] = queue.SimpleQueue()
        pending: dict[Future[list[Outcome]], list[Job]] = {}
        for i in range(0, len(jobs), size):
            future = self._submit(jobs[i : i + size])
            pending[future] = jobs[i : i + size]
            future.add_done_callback(finished.put)
        while pending:
            try:
                future = finished.get(timeout=0.2)
            except queue.Empty:
                future = None
            if self.stop.is_set():
                for f in pending:
                    f.cancel()  # a cancelled future also arrives through the queue
            group = pending.pop(future, None) if future is not None else None
            if future is None or group is None:
                continue
            if future.cancelled():
                failed.extend(Stopped("stop requested") for _ in group)
                continue
            try:
                outcomes = future.result()
            except Exception as err:  # noqa: BLE001 - a sender process died (BrokenProcessPool) or similar
                failed.extend(BatchError(f"{j.batch}: upload worker failed: {err!r}") for j in group)
                self._reset_senders()
                continue
            for outcome in outcomes:
                self._record(outcome, failed)
        self.timing["upload_wall"] += time.perf_counter() - started
        self._fail_if(failed)

    def _record(self, outcome: Outcome, failed: list[UploaderError]) -> None:
        """Count one batch's outcome, feed the watchdog and the progress bar."""
        if outcome.error is not None:
            err = outcome.error
            failed.append(err if isinstance(err, UploaderError) else BatchError(f"{outcome.batch}: {err}"))
            return
        if outcome.state is not None:
            self._marked[Path(outcome.batch)] = outcome.state
        if outcome.uploaded:
            self.uploaded += 1
            self.uploaded_bytes += outcome.size
        else:
            self.skipped += 1
        self.last_upload = time.time()
        self.heartbeat()
        if self.progress is not None:
            self.progress.update(outcome.size)

    def _reset_senders(self) -> None:
        """Drop a broken sender pool; the next upload starts a fresh one."""
        if self._senders is not None:
            self._senders.shutdown(wait=False, cancel_futures=True)
            self._senders = None

    def _listings(self, batches: list[Path]) -> dict[Path, dict[str, dict[str, Any]] | None]:
        """One listing per session folder and pass, instead of a HEAD per batch before its PUT.

        Keys uploaded later in the same pass are missing from it, but those batches have their markers
        and are not uploaded again.
        """
        s = self.settings
        for sdir in {b.parent for b in batches} - self._listed.keys():
            self._listed[sdir] = self.store.listing(object_key(s.prefix, s.box_id, sdir.parent.name, sdir.name) + "/")
        return self._listed

    # --- publishing ---------------------------------------------------------------------------------

    def publish(self, session_dir: Path) -> None:
        """Upload the session manifest once every batch is verified, then mark the folder touched."""
        self.check_stop()
        manifest = SessionManifest.load(session_dir)
        if not manifest.closed:
            raise BatchError(f"{session_dir}: session still open")
        entries = []
        for b in committed_batches(session_dir):
            stats = self.stats(b)
            done = self._marked.get(b) or UploadedMarker.load(b)
            if stats is None or done is None:
                raise BatchError(f"{session_dir}: {b.name} not uploaded yet")
            entries.append(batch_entry(stats, done))
        if manifest.batches and manifest.batches != len(entries):
            log.warning(
                "%s: manifest counts %d batches, %d on disk", session_dir, manifest.batches, len(entries)
            )
        s = self.settings
        # The envelope first: a session with a manifest on S3 has its envelope there too.
        publish_envelope(self.store, object_key(s.prefix, s.box_id, session_dir.parent.name, session_dir.name),
                         s.box_id, session_dir)
        doc = session_document(manifest, self.settings.box_id, entries)
        sha, md5 = digests(doc)
        key = object_key(s.prefix, s.box_id, session_dir.parent.name, session_dir.name, MANIFEST_NAME)
        self.store.put_verified(key, doc, len(doc), sha, md5, MANIFEST_CONTENT_TYPE, {META_BOX: s.box_id})
        TouchedMarker(manifest_key=key, manifest_sha256=sha, batches=len(entries), touched_at=time.time()).save(
            session_dir
        )
        for leftover in staged_leftovers(session_dir):
            leftover.unlink(missing_ok=True)
        log.info(
            "session %s/%s complete: %d batches, manifest s3://%s/%s",
            session_dir.parent.name,
            session_dir.name,
            len(entries),
            self.settings.bucket,
            key,
        )

    def _fail_if(self, failed: list[UploaderError]) -> None:
        """Record failures and raise the first (Luigi marks the task failed; the pass reports them)."""
        if failed:
            self.errors.extend(failed)
            raise failed[0]
