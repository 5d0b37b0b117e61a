"""The uploader's local state: the ``.upload/`` folder of each session and the ``.touched`` marker.

Per batch, inside ``<session>/.upload/``:
  ``batch-NNNNNN.stats.json``   processed (:class:`ProcessedBatch`), written by the Dask worker
  ``batch-NNNNNN.<format>``     the converted object, deleted once its upload is verified
  ``batch-NNNNNN.envelope.parquet``  the batch's min/max envelope (kernel.envelope), until the session is
                                published with its envelope
  ``batch-NNNNNN.json``         uploaded and verified (:class:`UploadedMarker`): the Luigi "done" marker
and ``<session>/.touched`` (:class:`TouchedMarker`) once the session's manifest is uploaded: the session
may then be deleted by the quota cleanup. All are written atomically (kernel.atomic).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from kernel.atomic import write_atomic
from kernel.envelope import ENVELOPE_SUFFIX
from kernel.layout import BATCH_PREFIX, UPLOAD_DIRNAME, batch_stem, touched_path
from kernel.objects import BatchStats, read_stats_fields, stats_fields

STATS_SUFFIX = ".stats.json"
MARKER_SUFFIX = ".json"


def staging_dir(session_dir: Path) -> Path:
    """The uploader's private folder inside a session."""
    return session_dir / UPLOAD_DIRNAME


def stats_file(staging: Path, stem: str) -> Path:
    """The processed marker of the batch ``stem`` in a staging folder."""
    return staging / f"{stem}{STATS_SUFFIX}"


def staged_object_file(staging: Path, stem: str, form: str) -> Path:
    """Where the converted object of the batch ``stem`` waits for its upload."""
    return staging / f"{stem}.{form}"


def envelope_file(staging: Path, stem: str) -> Path:
    """Where the envelope of the batch ``stem`` waits for the session's publication."""
    return staging / f"{stem}{ENVELOPE_SUFFIX}"


def stats_path(batch: Path) -> Path:
    """The processed marker of a committed batch."""
    return stats_file(staging_dir(batch.parent), batch_stem(batch))


def uploaded_path(batch: Path) -> Path:
    """The verified-upload marker of a committed batch."""
    return staging_dir(batch.parent) / f"{batch_stem(batch)}{MARKER_SUFFIX}"


def staged_leftovers(session_dir: Path) -> list[Path]:
    """Converted objects still in the staging folder (kept markers excluded)."""
    return [p for p in staging_dir(session_dir).glob(BATCH_PREFIX + "*") if not p.name.endswith(MARKER_SUFFIX)]


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON state file, or None when missing or unreadable."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


@dataclasses.dataclass(frozen=True)
class ProcessedBatch:
    """A processed batch: validated, described, converted; where its object is and its checksums."""

    name: str
    size: int
    sha256: str  # of the committed batch file
    format: str  # the object's format (csv for an invalid batch)
    object_file: str  # the committed file itself (csv) or the staged converted object
    object_size: int
    object_sha256: str
    object_md5: str  # base64, for Content-MD5
    content_type: str
    valid: bool = True
    stats: BatchStats | None = None
    error: str | None = None
    seconds: float = 0.0  # processing time (not stored)

    def to_json(self) -> bytes:
        """The stats marker's bytes."""
        doc = {f: getattr(self, f) for f in ("name", "size", "sha256", "format", "object_file", "object_size",
                                              "object_sha256", "object_md5", "content_type")}
        doc.update(stats_fields(self.valid, self.stats, self.error))
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def load(cls, path: Path) -> ProcessedBatch | None:
        """Read a stats marker; None when missing, unreadable or incomplete."""
        raw = read_json(path)
        if raw is None:
            return None
        try:
            valid, stats, error = read_stats_fields(raw)
            return cls(raw["name"], raw["size"], raw["sha256"], raw["format"], raw["object_file"],
                       raw["object_size"], raw["object_sha256"], raw["object_md5"], raw["content_type"],
                       valid, stats, error)
        except (KeyError, TypeError):
            return None


@dataclasses.dataclass(frozen=True)
class ProcessingFailure:
    """A batch that could not be processed (an I/O error): reported, retried by a later pass."""

    batch: str
    error: str


@dataclasses.dataclass(frozen=True)
class UploadedMarker:
    """A batch's object was uploaded (or found there) and verified by HEAD."""

    name: str
    key: str
    format: str
    object_size: int
    object_sha256: str
    etag: str
    verified_at: float
    put: bool  # False: an identical object was already there

    def to_json(self) -> bytes:
        """The marker's bytes."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def load(cls, batch: Path) -> UploadedMarker | None:
        """The marker of a committed batch; None when missing or unreadable."""
        raw = read_json(uploaded_path(batch))
        try:
            return cls(**raw) if raw is not None else None
        except TypeError:
            return None


@dataclasses.dataclass(frozen=True)
class TouchedMarker:
    """The session is closed and fully uploaded: where its manifest went."""

    manifest_key: str
    manifest_sha256: str
    batches: int
    touched_at: float

    def save(self, session_dir: Path) -> None:
        """Write ``.touched`` durably (it allows the session's deletion)."""
        write_atomic(touched_path(session_dir), json.dumps(dataclasses.asdict(self)).encode())
