"""The work behind the Luigi tasks: Dask processing, concurrent verified uploads, session publishing.

A Pipeline lives as long as the daemon: its Dask process pool and upload thread pool are created once
and reused by every pass (process start-up would otherwise dominate small passes).
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from reader.format import TOUCHED_NAME, SessionManifest, committed_batches, write_atomic
from uploader.convert import digests, process_batch, stats_path
from uploader.errors import BatchError, IntegrityError, Stopped, UploaderError
from uploader.manifest import batch_entry, session_document
from uploader.s3 import S3Store
from uploader.settings import Settings
from uploader.state import object_key, read_json, staging_dir, stem, uploaded_path

log = logging.getLogger(__name__)


def _worker_init() -> None:
    """Dask worker set-up: the parent alone handles SIGTERM/SIGINT, and workers die with it (kill -9)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Pipeline:
    """Long-lived context of upload passes: settings, S3 store, process pool, upload threads, counters."""

    def __init__(self, settings: Settings, stop: threading.Event | None = None, store: S3Store | None = None):
        self.settings = settings
        self.stop = stop or threading.Event()
        self._store = store
        self._store_lock = threading.Lock()
        self._procs: ProcessPoolExecutor | None = None
        self._threads: ThreadPoolExecutor | None = None
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
        """The Dask process pool (spawned workers: no fork of a threaded parent)."""
        if self._procs is None:
            self._procs = ProcessPoolExecutor(
                max_workers=self.settings.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
            )
        return self._procs

    def close(self) -> None:
        """Shut the pools down (in-flight work finishes first)."""
        if self._threads is not None:
            self._threads.shutdown(wait=True, cancel_futures=True)
            self._threads = None
        if self._procs is not None:
            self._procs.shutdown(wait=True, cancel_futures=True)
            self._procs = None

    def check_stop(self) -> None:
        """Raise Stopped when a stop was requested."""
        if self.stop.is_set():
            raise Stopped("stop requested")

    # --- processing ---------------------------------------------------------------------------------

    def process(self, batches: list[Path]) -> None:
        """Validate, describe and convert batches in one Dask call over the process pool."""
        import dask.bag as db

        self.check_stop()
        fmt = self.settings.upload_format
        args = [(str(b), fmt, str(staging_dir(b.parent))) for b in batches]
        nparts = max(1, min(len(args), self.settings.workers * 2))
        started = time.perf_counter()
        results = (
            db.from_sequence(args, npartitions=nparts)
            .starmap(process_batch)
            .compute(scheduler="processes", pool=self._pool())
        )
        self.heartbeat()
        self.timing["process_calls"] += 1
        self.timing["process_batches"] += len(batches)
        self.timing["process_wall"] += time.perf_counter() - started
        failed = []
        for r in results:
            if "error" in r and "name" not in r:
                failed.append(BatchError(f"processing {r['batch']}: {r['error']}"))
                continue
            self.timing["process_work"] += r.get("seconds", 0.0)
            if not r["valid"]:
                log.error("%s: %s; uploading the original CSV as is", r["name"], r["error"])
        self._fail_if(failed)

    # --- uploading ----------------------------------------------------------------------------------

    def upload_one(self, batch: Path, listing: dict[str, dict[str, Any]] | None = None) -> int:
        """Upload one processed batch (unless already there), verify it, record it; returns its size."""
        info = read_json(stats_path(staging_dir(batch.parent), stem(batch)))
        if info is None:
            raise BatchError(f"{batch}: not processed")
        s = self.settings
        key = object_key(s.prefix, s.box_id, batch.parent, f"{stem(batch)}.{info['format']}")
        source = Path(info["object_file"])
        try:
            uploaded, head = self.store.put_verified(
                key,
                source,
                info["object_size"],
                info["object_sha256"],
                info["object_md5"],
                info["content_type"],
                {"source-sha256": info["sha256"], "box": s.box_id},
                listing,
            )
        except IntegrityError:
            # The bytes on disk no longer match what was processed (e.g. a staged file lost in a power cut):
            # forget the processing so the next pass redoes it from the committed batch.
            stats_path(staging_dir(batch.parent), stem(batch)).unlink(missing_ok=True)
            raise
        state = {
            "name": batch.name,
            "key": key,
            "format": info["format"],
            "object_size": info["object_size"],
            "object_sha256": info["object_sha256"],
            "etag": str(head.get("ETag", "")).strip('"'),
            "verified_at": time.time(),
            "put": uploaded,
        }
        # Not fsynced: if a power cut loses this marker, the listing/HEAD before the next PUT finds the
        # verified object and skips it. Only .touched (which allows deletion) is written durably.
        write_atomic(uploaded_path(batch), json.dumps(state, sort_keys=True).encode(), durable=False)
        if source.parent == staging_dir(batch.parent):
            source.unlink(missing_ok=True)
        if uploaded:
            self.uploaded += 1
            self.uploaded_bytes += info["size"]
        else:
            self.skipped += 1
        self.last_upload = time.time()
        return int(info["size"])

    def upload_many(self, batches: list[Path]) -> None:
        """Upload batches concurrently; on stop, queued uploads are dropped and in-flight ones finish."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="upload")
        self.check_stop()
        started = time.perf_counter()
        listings = self._listings(batches)
        pending: dict[Future[int], Path] = {
            self._threads.submit(self.upload_one, b, listings.get(b.parent)): b for b in batches
        }
        failed: list[UploaderError] = []
        while pending:
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            if self.stop.is_set():
                for f in pending:
                    f.cancel()
            for f in done:
                batch = pending.pop(f)
                try:
                    size = f.result()
                except UploaderError as err:
                    failed.append(err)
                except OSError as err:
                    failed.append(BatchError(f"{batch}: {err}"))
                else:
                    self.heartbeat()
                    if self.progress is not None:
                        self.progress.update(size)
            for f in [f for f in pending if f.cancelled()]:
                pending.pop(f)
                failed.append(Stopped("stop requested"))
        self.timing["upload_wall"] += time.perf_counter() - started
        self._fail_if(failed)

    def _listings(self, batches: list[Path]) -> dict[Path, dict[str, dict[str, Any]] | None]:
        """One listing per session folder instead of a HEAD per batch before its PUT."""
        s = self.settings
        out: dict[Path, dict[str, dict[str, Any]] | None] = {}
        for sdir in {b.parent for b in batches}:
            out[sdir] = self.store.listing(object_key(s.prefix, s.box_id, sdir, "") + "/")
        return out

    # --- publishing ---------------------------------------------------------------------------------

    def publish(self, session_dir: Path) -> None:
        """Upload the session manifest once every batch is verified, then mark the folder touched."""
        self.check_stop()
        manifest = SessionManifest.load(session_dir)
        if not manifest.closed:
            raise BatchError(f"{session_dir}: session still open")
        entries = []
        for b in committed_batches(session_dir):
            stats = read_json(stats_path(staging_dir(session_dir), stem(b)))
            done = read_json(uploaded_path(b))
            if stats is None or done is None:
                raise BatchError(f"{session_dir}: {b.name} not uploaded yet")
            entries.append(batch_entry(stats, done))
        if manifest.batches and manifest.batches != len(entries):
            log.warning(
                "%s: manifest counts %d batches, %d on disk", session_dir, manifest.batches, len(entries)
            )
        doc = session_document(manifest, self.settings.box_id, entries)
        sha, md5 = digests(doc)
        key = object_key(self.settings.prefix, self.settings.box_id, session_dir, "session.json")
        self.store.put_verified(
            key, doc, len(doc), sha, md5, "application/json", {"box": self.settings.box_id}
        )
        marker = {
            "manifest_key": key,
            "manifest_sha256": sha,
            "batches": len(entries),
            "touched_at": time.time(),
        }
        write_atomic(session_dir / TOUCHED_NAME, json.dumps(marker).encode())
        for leftover in staging_dir(session_dir).glob("batch-*"):
            if not leftover.name.endswith(".json"):
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
