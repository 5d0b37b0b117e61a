"""One upload pass: Luigi processes chunks of batches, a bounded thread pool uploads them as they come.

Design, in one process. A pass's batches (oldest first, at most ``max_batches``) are cut into chunks of
1, 2, 4 … up to ``chunk`` batches. For each chunk the pass builds one ``ProcessChunk`` task
(uploader/tasks.py: Luigi's local scheduler, Dask threads) and hands the processed batches to the upload
pool (``concurrency`` threads sharing one boto3 client, both created at start-up so the first batch pays
no warm-up). The next chunk is processed while those upload; processing waits while more than a chunk of
uploads is outstanding, so a pass never holds more than two chunks in flight, whatever the backlog. Each
upload is a Content-MD5 PUT verified by HEAD, then its marker. Once every batch of a closed session is
verified, the session is published: its event markers, its manifest, then ``.touched``.

The uploads run outside Luigi on purpose: they need the daemon's long-lived client and pool, its stop
event, watchdog and progress bar, which task parameters cannot carry without a module global.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from kernel.atomic import write_atomic
from kernel.layout import MARKERS_NAME, batch_stem, committed_batches
from kernel.manifest import SessionManifest
from kernel.objects import (
    MANIFEST_CONTENT_TYPE,
    MARKERS_CONTENT_TYPE,
    META_BOX,
    META_SOURCE_SHA256,
    batch_object_name,
    manifest_key,
    markers_key,
    object_key,
)
from kernel.upload_state import (
    ProcessedBatch,
    TouchedMarker,
    UploadedMarker,
    staged_leftovers,
    staging_dir,
    stats_path,
    uploaded_path,
)
from uploader.convert import digests
from uploader.envelope import publish_envelope
from uploader.errors import BatchError, IntegrityError, S3ConfigError, S3Unavailable, Stopped, UploaderError
from uploader.manifest import batch_entry, session_document
from uploader.s3 import S3Store
from uploader.settings import Settings
from uploader.state import Plan

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one batch's upload: sent (or already there) and verified, or an error."""

    batch: Path
    size: int = 0
    uploaded: bool = False
    error: UploaderError | None = None


@dataclasses.dataclass
class PassResult:
    """What a pass did."""

    ok: bool
    errors: list[UploaderError]
    uploaded: int
    uploaded_bytes: int
    skipped: int
    seconds: float


def cut(batches: list[Path], chunk: int) -> list[list[Path]]:
    """The pass's chunks, oldest first: 1 batch, then 2, 4 … up to ``chunk``, so uploading starts at once."""
    size, out, i = 1, [], 0
    while i < len(batches):
        out.append(batches[i : i + size])
        i, size = i + size, min(chunk, 2 * size)
    return out


class Pipeline:
    """The daemon's long-lived upload context: settings, S3 store, upload pool, counters."""

    def __init__(self, settings: Settings, stop: threading.Event | None = None, store: S3Store | None = None):
        import pyarrow

        # A stop (SIGTERM) is ours to handle: the batch being read finishes, and the pass stops after it.
        # Arrow would otherwise cancel a CSV read in flight on the signal and fail that batch.
        pyarrow.enable_signal_handlers(False)
        self.settings = settings
        self.stop = stop or threading.Event()
        self._store = store
        self._pool: ThreadPoolExecutor | None = None
        # Called after each upload verified: the service sends WATCHDOG=1 from it, so long passes keep the
        # watchdog fed and a hung request starves it.
        self.heartbeat: Callable[[], None] = lambda: None
        self.progress: Any = None
        self.uploaded = self.uploaded_bytes = self.skipped = 0
        self.last_upload: float | None = None

    @property
    def store(self) -> S3Store:
        """The S3 store (its client is built once)."""
        if self._store is None:
            self._store = S3Store(self.settings)
        return self._store

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The upload threads."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="upload")
        return self._pool

    def warm_up(self) -> None:
        """Import the processing stack and build the client and pool now, not on the first batch."""
        import pyarrow
        import pyarrow.csv
        import pyarrow.parquet

        import uploader.tasks  # noqa: F401 - Luigi and Dask

        # Arrow's default (mimalloc) pool keeps freed pages for each thread: about 20 MB more over a catch-up.
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())
        _ = self.store, self.pool

    def close(self) -> None:
        """Shut the pool down (queued uploads dropped, in-flight ones finish)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # --- a pass -------------------------------------------------------------------------------------

    def run_pass(self, plan: Plan) -> PassResult:
        """Process and upload the planned batches, then publish the planned sessions that are complete."""
        from uploader.tasks import ProcessChunk, build

        started = time.perf_counter()
        before = (self.uploaded, self.uploaded_bytes, self.skipped)
        s, errors = self.settings, []
        listings = self._list(plan)
        inflight: set[Future[Outcome]] = set()
        for chunk in cut(plan.batches, s.chunk):
            self._collect(inflight, errors, keep=s.chunk)
            if self._halted(errors):
                break
            task = ProcessChunk(batches=[str(b) for b in chunk], fmt=s.upload_format, workers=s.workers)
            build(task)
            errors += [BatchError(f"processing {f.batch}: {f.error}") for f in task.failures]
            failed = {Path(f.batch) for f in task.failures}
            for batch, target in zip(chunk, task.output(), strict=True):
                info = target.load()
                if info is None:
                    if batch not in failed:
                        errors.append(BatchError(f"{batch}: not processed"))
                    continue
                if not info.valid:
                    log.error("%s: %s; uploading the original CSV as is", info.name, info.error)
                inflight.add(self.pool.submit(self._upload, batch, info, listings[batch.parent]))
        self._collect(inflight, errors, keep=0)
        if self.stop.is_set():
            errors.append(Stopped("stop requested"))
        elif not self._halted(errors):
            for sdir in plan.publish:
                try:
                    self.publish(sdir, listings.get(sdir))
                except UploaderError as err:
                    errors.append(err)
        return PassResult(
            not errors,
            errors,
            self.uploaded - before[0],
            self.uploaded_bytes - before[1],
            self.skipped - before[2],
            time.perf_counter() - started,
        )

    def _collect(self, inflight: set[Future[Outcome]], errors: list[UploaderError], keep: int) -> None:
        """Record finished uploads until at most ``keep`` are outstanding; on stop or an S3 outage (or
        refusal), drop the queued ones: the pass ends as soon as those in flight are done."""
        while len(inflight) > keep:
            done, _ = wait(inflight, timeout=0.2, return_when=FIRST_COMPLETED)
            if self._halted(errors):
                for f in inflight:
                    f.cancel()
            for f in done:
                inflight.discard(f)
                if f.cancelled():
                    errors.append(Stopped("stop requested"))
                else:
                    self._record(f.result(), errors)
            inflight -= {f for f in inflight if f.cancelled()}

    def _halted(self, errors: list[UploaderError]) -> bool:
        """A stop was requested, or S3 is down or refuses us: the rest of the pass would fail alike."""
        return self.stop.is_set() or any(isinstance(e, (S3Unavailable, S3ConfigError)) for e in errors)

    def _record(self, outcome: Outcome, errors: list[UploaderError]) -> None:
        """Count one batch's outcome, feed the watchdog and the progress bar."""
        if outcome.error is not None:
            errors.append(outcome.error)
            return
        if outcome.uploaded:
            self.uploaded += 1
            self.uploaded_bytes += outcome.size
        else:
            self.skipped += 1
        self.last_upload = time.time()
        self.heartbeat()
        if self.progress is not None:
            self.progress.update(outcome.size)

    def _list(self, plan: Plan) -> dict[Path, Future[dict[str, dict[str, Any]] | None]]:
        """Ask for each session's objects from its first pending batch's name on, in the upload threads.

        One request instead of a HEAD per batch; batch names sort by index, so the uploaded part of a long
        session is skipped, and the listing runs while the first chunk is processed. Keys uploaded later in
        the pass are missing from it, but those batches have their markers.
        """
        first: dict[Path, Path] = {}
        for b in plan.batches:
            first.setdefault(b.parent, b)
        out = {}
        for sdir, b in first.items():
            prefix = self._session_prefix(sdir)
            out[sdir] = self.pool.submit(self.store.listing, prefix + "/", f"{prefix}/{batch_stem(b)}")
        return out

    def _session_prefix(self, sdir: Path) -> str:
        """``<prefix>/<box>/<device>/<session>``."""
        return object_key(self.settings.prefix, self.settings.box_id, sdir.parent.name, sdir.name)

    # --- one batch (in an upload thread) ------------------------------------------------------------

    def _upload(self, batch: Path, info: ProcessedBatch, listing: Future[dict[str, Any] | None]) -> Outcome:
        """Upload one processed batch (unless already there), verify it, write its marker; never raises."""
        key = f"{self._session_prefix(batch.parent)}/{batch_object_name(batch_stem(batch), info.format)}"
        source = Path(info.object_file)
        try:
            uploaded, head = self.store.put_verified(
                key,
                source,
                info.object_size,
                info.object_sha256,
                info.object_md5,
                info.content_type,
                {META_SOURCE_SHA256: info.sha256, META_BOX: self.settings.box_id},
                listing.result(),
            )
            marker = UploadedMarker(
                name=batch.name,
                key=key,
                format=info.format,
                object_size=info.object_size,
                object_sha256=info.object_sha256,
                etag=str(head.get("ETag", "")).strip('"'),
                verified_at=time.time(),
                put=uploaded,
            )
            # Not fsynced: if a power cut loses this marker, the listing/HEAD before the next PUT finds the
            # verified object and skips it. Only .touched (which allows deletion) is written durably.
            write_atomic(uploaded_path(batch), marker.to_json(), durable=False)
            if source.parent == staging_dir(batch.parent):
                source.unlink(missing_ok=True)
        except IntegrityError as err:
            # The bytes on disk no longer match what was processed (e.g. a staged file lost in a power
            # cut): forget the processing so the next pass redoes it from the committed batch.
            stats_path(batch).unlink(missing_ok=True)
            return Outcome(batch, error=err)
        except UploaderError as err:
            return Outcome(batch, error=err)
        except OSError as err:
            return Outcome(batch, error=BatchError(f"{batch}: {err}"))
        return Outcome(batch, info.size, uploaded)

    # --- publishing ---------------------------------------------------------------------------------

    def publish(self, session_dir: Path, listing: Future[dict[str, Any] | None] | None = None) -> None:
        """Upload the session's markers and manifest once every batch is verified, then mark it touched."""
        manifest = SessionManifest.load(session_dir)
        if not manifest.closed:
            raise BatchError(f"{session_dir}: session still open")
        entries = []
        for b in committed_batches(session_dir):
            stats, done = ProcessedBatch.load(stats_path(b)), UploadedMarker.load(b)
            if stats is None or done is None:
                return  # not all uploaded (the failure is reported already): published by a later pass
            entries.append(batch_entry(stats, done))
        if manifest.batches and manifest.batches != len(entries):
            log.warning(
                "%s: manifest counts %d batches, %d on disk", session_dir, manifest.batches, len(entries)
            )
        prefix, box = self._session_prefix(session_dir), {META_BOX: self.settings.box_id}
        listed = listing.result() if listing is not None else None
        # The envelope and the markers first: a session with a manifest on S3 has them there too.
        publish_envelope(self.store, prefix, self.settings.box_id, session_dir)
        markers = session_dir / MARKERS_NAME
        if markers.exists():
            data = markers.read_bytes()
            self.store.put_verified(
                markers_key(prefix), data, len(data), *digests(data), MARKERS_CONTENT_TYPE, box, listed
            )
        doc = session_document(manifest, self.settings.box_id, entries)
        sha, md5 = digests(doc)
        key = manifest_key(prefix)
        self.store.put_verified(key, doc, len(doc), sha, md5, MANIFEST_CONTENT_TYPE, box, listed)
        TouchedMarker(
            manifest_key=key, manifest_sha256=sha, batches=len(entries), touched_at=time.time()
        ).save(session_dir)
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
