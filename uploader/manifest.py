"""The uploaded session manifest: the local session.json fields plus one entry per batch.

The chain device → batch → object can be checked from it: each entry carries the sha256 of the
original local CSV (``sha256``) and of the stored object (``object_sha256``), with the object key.
The document is deterministic (sorted keys, no clocks) so a rerun produces identical bytes and the
HEAD-before-PUT check skips it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from reader.format import SessionManifest

# Fields copied from a batch's stats/upload state into its manifest entry, in this order.
BATCH_FIELDS = (
    "name",
    "key",
    "format",
    "sha256",
    "size",
    "object_sha256",
    "object_size",
    "rows",
    "first_time",
    "last_time",
    "channels",
    "seq_gaps",
    "seq_missing",
    "first_seq",
    "last_seq",
    "valid",
    "error",
)


def batch_entry(stats: dict[str, Any], uploaded: dict[str, Any]) -> dict[str, Any]:
    """One manifest entry from a batch's processed stats and its verified-upload state."""
    merged = {**stats, "key": uploaded["key"], "format": uploaded["format"]}
    return {f: merged[f] for f in BATCH_FIELDS if f in merged and (f != "error" or merged[f])}


def session_document(manifest: SessionManifest, box_id: str, entries: list[dict[str, Any]]) -> bytes:
    """Bytes of the uploaded session.json."""
    doc = dataclasses.asdict(manifest)
    doc["batch_count"] = doc.pop("batches")
    doc["box_id"] = box_id
    doc["batches"] = entries
    doc["rows"] = sum(e.get("rows") or 0 for e in entries)
    # Compact (C-encoded) JSON: a few ms and about half the bytes of an indented one for a long session.
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()
