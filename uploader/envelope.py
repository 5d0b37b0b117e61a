"""The uploader's part of the envelope (kernel.envelope): one per batch when processed, one per session when published.

Two calls, kept apart from the rest of the pipeline: :func:`write_batch_envelope` in ``process_batch`` (the
batch's Arrow table is at hand there) and :func:`publish_envelope` in ``publish``, just before the manifest,
so a session whose manifest is on S3 always has its envelope there too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kernel.atomic import write_atomic
from kernel.batch import read_batch_table
from kernel.envelope import batch_envelope, combine, read_envelope, to_bytes
from kernel.layout import batch_stem, committed_batches, envelope_path
from kernel.objects import ENVELOPE_CONTENT_TYPE, META_BOX, envelope_key
from kernel.upload_state import envelope_file, staging_dir

log = logging.getLogger(__name__)


def write_batch_envelope(table: Any, staging: Path, stem: str) -> None:
    """Write the envelope of a valid batch's typed table into the staging folder (derived data: not fsynced)."""
    write_atomic(envelope_file(staging, stem), to_bytes(batch_envelope(table)), durable=False)


def _batch_envelope(batch: Path) -> Any | None:
    """A committed batch's staged envelope, else one computed from the batch (None for an invalid batch)."""
    staged = envelope_file(staging_dir(batch.parent), batch_stem(batch))
    try:
        return read_envelope(staged)
    except (OSError, ValueError):
        pass
    try:
        return batch_envelope(read_batch_table(batch))
    except (OSError, ValueError) as err:
        log.debug("%s: no envelope (%s)", batch, err)
        return None


def session_envelope(session_dir: Path) -> bytes:
    """The session's envelope: its batches' envelopes combined, written into the session folder."""
    data = to_bytes(combine(_batch_envelope(b) for b in committed_batches(session_dir)))
    write_atomic(envelope_path(session_dir), data, durable=False)
    return data


def publish_envelope(store: Any, session_prefix: str, box_id: str, session_dir: Path) -> str:
    """Write the session's envelope and upload it (verified) under the session's key prefix; returns the key."""
    from uploader.convert import digests

    data = session_envelope(session_dir)
    sha, md5 = digests(data)
    key = envelope_key(session_prefix)
    store.put_verified(key, data, len(data), sha, md5, ENVELOPE_CONTENT_TYPE, {META_BOX: box_id})
    return key
