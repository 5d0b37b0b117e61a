"""Building the uploaded session manifest (kernel.objects.UploadedManifest) from the uploader's state.

The chain device → batch → object can be checked from it: each entry carries the sha256 of the
original local CSV and of the stored object, with the object key. The document is deterministic
(sorted keys, no clocks) so a rerun produces identical bytes and the HEAD-before-PUT check skips it.
"""

from __future__ import annotations

from kernel.manifest import SessionManifest
from kernel.objects import UploadedBatch, UploadedManifest
from kernel.upload_state import ProcessedBatch, UploadedMarker


def batch_entry(stats: ProcessedBatch, uploaded: UploadedMarker) -> UploadedBatch:
    """One manifest entry from a batch's processed stats and its verified-upload marker."""
    return UploadedBatch(
        name=stats.name,
        key=uploaded.key,
        format=uploaded.format,
        sha256=stats.sha256,
        size=stats.size,
        object_sha256=stats.object_sha256,
        object_size=stats.object_size,
        valid=stats.valid,
        stats=stats.stats,
        error=stats.error,
    )


def session_document(manifest: SessionManifest, box_id: str, entries: list[UploadedBatch]) -> bytes:
    """Bytes of the uploaded session.json."""
    return UploadedManifest(manifest, box_id, entries).to_json()
