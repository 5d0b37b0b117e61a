"""Sending processed batches: one verified, idempotent upload per batch, run in groups by the senders.

The daemon hands out *groups* of batches; a sender (one of ``upload_processes`` spawned processes, or
the daemon itself when that is 0) uploads a group's batches concurrently on its own threads with its own
boto3 client. Spreading boto3's request signing and parsing over processes keeps the GIL from capping
the throughput. Each batch's outcome comes back separately, so progress, the watchdog heartbeat and
error reports stay per batch.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kernel.atomic import write_atomic
from kernel.layout import batch_stem
from kernel.objects import META_BOX, META_SOURCE_SHA256, batch_object_name, object_key
from kernel.upload_state import ProcessedBatch, UploadedMarker, staging_dir, stats_path, uploaded_path
from uploader.errors import IntegrityError, UploaderError
from uploader.s3 import S3Store
from uploader.settings import Settings

_IN_MEMORY_MAX = 64 << 20  # larger objects are streamed from their file


@dataclasses.dataclass(frozen=True)
class Job:
    """One batch to upload: its processed stats and what the bucket listing said of its key."""

    batch: str
    key: str
    info: ProcessedBatch
    listing: dict[str, dict[str, Any]] | None  # {key: entry}, {} = key absent, None = no listing


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one job: the object was sent (or already there), or an error."""

    batch: str
    size: int = 0
    uploaded: bool = False
    error: Exception | None = None
    state: UploadedMarker | None = None  # what the batch's uploaded marker now says


def job_for(settings: Settings, batch: Path, info: ProcessedBatch, listing: dict[str, Any] | None) -> Job:
    """A job, carrying only the listing entry of the batch's own key."""
    key = batch_key(settings, batch, info)
    mine = None if listing is None else ({key: listing[key]} if key in listing else {})
    return Job(str(batch), key, info, mine)


def batch_key(settings: Settings, batch: Path, info: ProcessedBatch) -> str:
    """``<prefix>/<box>/<device>/<session>/<batch>.<format>`` of a processed batch."""
    sdir = batch.parent
    return object_key(settings.prefix, settings.box_id, sdir.parent.name, sdir.name,
                      batch_object_name(batch_stem(batch), info.format))


def upload_batch(store: S3Store, settings: Settings, job: Job) -> Outcome:
    """Upload one processed batch (unless already there), verify it, write its marker; never raises."""
    batch, info, key = Path(job.batch), job.info, job.key
    source = Path(info.object_file)
    try:
        # Batches are small: sending bytes spares botocore's "Expect: 100-continue" round trip per PUT.
        body = source.read_bytes() if info.object_size <= _IN_MEMORY_MAX else source
        uploaded, head = store.put_verified(
            key,
            body,
            info.object_size,
            info.object_sha256,
            info.object_md5,
            info.content_type,
            {META_SOURCE_SHA256: info.sha256, META_BOX: settings.box_id},
            job.listing,
        )
        state = UploadedMarker(
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
        write_atomic(uploaded_path(batch), state.to_json(), durable=False)
        if source.parent == staging_dir(batch.parent):
            source.unlink(missing_ok=True)
    except IntegrityError as err:
        # The bytes on disk no longer match what was processed (e.g. a staged file lost in a power cut):
        # forget the processing so the next pass redoes it from the committed batch.
        stats_path(batch).unlink(missing_ok=True)
        return Outcome(job.batch, error=err)
    except (UploaderError, OSError) as err:
        return Outcome(job.batch, error=err)
    return Outcome(job.batch, info.size, uploaded, state=state)


class Sender:
    """The uploading side of one process: a boto3 client and a few threads, kept for the process's life."""

    def __init__(self, settings: Settings, threads: int) -> None:
        self.settings = settings
        self.store = S3Store(settings)
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="send") if threads > 1 else None

    def run(self, jobs: list[Job]) -> list[Outcome]:
        """Upload a group's jobs concurrently (as many at once as this sender has threads), in order."""
        if self._threads is None or len(jobs) == 1:
            return [upload_batch(self.store, self.settings, j) for j in jobs]
        return list(self._threads.map(lambda j: upload_batch(self.store, self.settings, j), jobs))


def client_key(settings: Settings) -> tuple[Any, ...]:
    """The settings a boto3 client is built from: a sender keeps its client while these stay the same."""
    s = settings
    return (
        s.bucket,
        s.endpoint_url,
        s.region,
        s.connect_timeout,
        s.read_timeout,
        s.max_attempts,
        s.checksum_mode,
        s.concurrency,
        s.upload_processes,
    )


def sender_threads(settings: Settings) -> int:
    """Uploads at once in one sender process: the concurrency spread over the sender processes."""
    return max(1, -(-settings.concurrency // settings.upload_processes)) if settings.upload_processes else 1


def group_size(settings: Settings, jobs: int) -> int:
    """Batches per group handed to a sender.

    A sender's threads idle at the end of each group until its slowest upload is done, so groups hold
    a few uploads per thread; but no more than an even share of the work, so every sender gets some.
    """
    threads = sender_threads(settings)
    if not settings.upload_processes:
        return 1
    share = -(-jobs // settings.upload_processes)
    return max(threads, min(4 * threads, share))


_SENDER: Sender | None = None  # a sender process's one sender, built on its first group


def send_group(settings: Settings, jobs: list[Job]) -> list[Outcome]:
    """Entry point of a sender process: upload a group of jobs with this process's sender."""
    global _SENDER
    _SENDER = sender_for(_SENDER, settings, sender_threads(settings))
    return _SENDER.run(jobs)


def sender_for(current: Sender | None, settings: Settings, threads: int) -> Sender:
    """The sender to use with these settings: the current one unless its boto3 client no longer fits."""
    if current is None or client_key(current.settings) != client_key(settings):
        return Sender(settings, threads)
    current.settings = settings  # key layout (prefix, box id) may differ; the client stays
    return current
