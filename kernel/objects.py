"""The uploaded object format: key scheme, object formats and metadata, and the uploaded session manifest.

Keys: ``<prefix>/<box id>/<device id>/<session id>/`` holds one object per committed batch,
``batch-NNNNNN.<format>`` (``parquet``: zstd, the batch schema of kernel.batch; ``csv.gz``/``csv``: the
batch file's bytes), the session's event markers as ``markers.jsonl`` when it has any (uploaded before the
manifest), and ``session.json``, an :class:`UploadedManifest`: the local session manifest's
fields (its batch count as ``batch_count``), ``box_id``, ``rows`` and one :class:`UploadedBatch` entry per
batch with the object's key, format, checksums and the batch's time span and statistics. The uploader
writes it last, once every batch is verified; the analysis reads it to find and prune batches. Just before
it, the uploader puts ``envelope.parquet``, the session's min/max envelope (kernel.envelope), which overviews
read instead of the samples, and ``markers.jsonl`` (kernel.markers, the local file's bytes) when the session
has event markers. A session whose manifest is missing (an upload cut short) is read from the listing of
its batch objects.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from kernel.layout import BATCH_PREFIX, ENVELOPE_NAME, MANIFEST_NAME, MARKERS_NAME
from kernel.manifest import SessionManifest

PARQUET, CSV_GZ, CSV = "parquet", "csv.gz", "csv"
FORMATS = (PARQUET, CSV_GZ, CSV)  # in order of preference when several exist for one batch
CONTENT_TYPES = {PARQUET: "application/vnd.apache.parquet", CSV_GZ: "application/gzip", CSV: "text/csv"}
MANIFEST_CONTENT_TYPE = "application/json"
MARKERS_CONTENT_TYPE = "application/x-ndjson"
ENVELOPE_CONTENT_TYPE = CONTENT_TYPES[PARQUET]

# User metadata of every object (S3 may capitalise the names when it returns them).
META_SHA256 = "sha256"  # sha256 of the object's bytes
META_SOURCE_SHA256 = "source-sha256"  # sha256 of the committed batch file it came from
META_BOX = "box"  # the box that uploaded it

_BATCH_OBJECT_RE = re.compile(rf"^({re.escape(BATCH_PREFIX)}\d{{6,}})\.(parquet|csv\.gz|csv)$")


def object_key(prefix: str, box_id: str, device_id: str, session_id: str, name: str = "") -> str:
    """``<prefix>/<box>/<device>/<session>/<name>`` (empty parts left out)."""
    return "/".join(p for p in (prefix, box_id, device_id, session_id, name) if p)


def batch_object_name(stem: str, form: str) -> str:
    """``batch-000001.parquet`` for the batch ``batch-000001`` in format ``form``."""
    return f"{stem}.{form}"


def manifest_key(session_prefix: str) -> str:
    """The uploaded manifest's key under a session's key prefix."""
    return f"{session_prefix}/{MANIFEST_NAME}" if session_prefix else MANIFEST_NAME


def markers_key(session_prefix: str) -> str:
    """The uploaded markers file's key under a session's key prefix."""
    return f"{session_prefix}/{MARKERS_NAME}" if session_prefix else MARKERS_NAME


def envelope_key(session_prefix: str) -> str:
    """The session envelope's key under a session's key prefix."""
    return f"{session_prefix}/{ENVELOPE_NAME}" if session_prefix else ENVELOPE_NAME


def key_parent(key: str) -> str:
    """The key prefix an object lies under (``a/b`` for ``a/b/c``; empty at the top)."""
    return key.rsplit("/", 1)[0] if "/" in key else ""


def is_manifest_key(key: str) -> bool:
    """True for the key of an uploaded session manifest."""
    return key == MANIFEST_NAME or key.endswith("/" + MANIFEST_NAME)


def manifest_session(key: str) -> tuple[str, str, str]:
    """(device prefix, device id, session id) of a manifest key ``.../<device>/<session>/session.json``."""
    parts = key.split("/")
    return "/".join(parts[:-2]), parts[-3] if len(parts) >= 3 else "", parts[-2] if len(parts) >= 2 else ""


def parse_batch_object(name: str) -> tuple[str, str] | None:
    """(batch stem, format) of a batch object's name or key, or None for any other object."""
    m = _BATCH_OBJECT_RE.match(name.rsplit("/", 1)[-1])
    return (m.group(1), m.group(2)) if m else None


@dataclasses.dataclass(frozen=True)
class ChannelStats:
    """Minimum, maximum and mean of one channel in a batch (None when not finite or no rows)."""

    min: float | None
    max: float | None
    mean: float | None


@dataclasses.dataclass(frozen=True)
class BatchStats:
    """What a valid batch holds: rows, time span (batch time format), channel statistics, counter gaps."""

    rows: int
    first_time: str | None
    last_time: str | None
    channels: dict[str, ChannelStats]
    seq_gaps: int | None  # None: no counter column
    seq_missing: int | None
    first_seq: int | None = None  # only with a counter and rows
    last_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as written (first/last_seq only when known)."""
        out = dataclasses.asdict(self)
        for name in ("first_seq", "last_seq"):
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BatchStats:
        """Read the fields back from a document holding them."""
        channels = {str(k): ChannelStats(**v) for k, v in (raw.get("channels") or {}).items()}
        return cls(raw["rows"], raw.get("first_time"), raw.get("last_time"), channels, raw.get("seq_gaps"),
                   raw.get("seq_missing"), raw.get("first_seq"), raw.get("last_seq"))


def stats_fields(valid: bool, stats: BatchStats | None, error: str | None) -> dict[str, Any]:
    """The content fields shared by the stats marker and the manifest entry (``rows`` null when invalid)."""
    out: dict[str, Any] = {"valid": valid, **(stats.to_dict() if stats is not None else {"rows": None})}
    if error:
        out["error"] = error
    return out


def read_stats_fields(raw: dict[str, Any]) -> tuple[bool, BatchStats | None, str | None]:
    """(valid, stats, error) back from a document written with :func:`stats_fields`."""
    stats = BatchStats.from_dict(raw) if raw.get("rows") is not None else None
    return bool(raw.get("valid", True)), stats, raw.get("error") or None


@dataclasses.dataclass(frozen=True)
class UploadedBatch:
    """One entry of the uploaded manifest: the batch, its object, and what it holds."""

    name: str  # the committed batch file's name
    key: str  # the object's key
    format: str  # one of FORMATS (csv for an invalid batch uploaded as is)
    sha256: str  # of the committed batch file
    size: int
    object_sha256: str
    object_size: int
    valid: bool = True
    stats: BatchStats | None = None  # None for an invalid batch
    error: str | None = None

    @property
    def rows(self) -> int | None:
        """Rows of the batch, when it was valid."""
        return self.stats.rows if self.stats is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry."""
        head = {f: getattr(self, f) for f in ("name", "key", "format", "sha256", "size", "object_sha256",
                                               "object_size")}
        return {**head, **stats_fields(self.valid, self.stats, self.error)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> UploadedBatch:
        """Read a manifest entry; ValueError when a required field is missing."""
        try:
            valid, stats, error = read_stats_fields(raw)
            return cls(raw["name"], raw["key"], raw["format"], raw["sha256"], raw["size"], raw["object_sha256"],
                       raw["object_size"], valid, stats, error)
        except (KeyError, TypeError) as err:
            raise ValueError(f"bad batch entry in the uploaded manifest ({err!r})") from err


@dataclasses.dataclass
class UploadedManifest:
    """The uploaded ``session.json``: the session manifest, the box and every batch's entry."""

    session: SessionManifest
    box_id: str
    batches: list[UploadedBatch]

    @property
    def rows(self) -> int:
        """Rows in all valid batches."""
        return sum(b.rows or 0 for b in self.batches)

    def to_json(self) -> bytes:
        """Deterministic bytes (sorted keys, compact, no clocks): a rerun produces the same object."""
        doc = self.session.to_dict()
        doc["batch_count"] = doc.pop("batches")
        doc["box_id"] = self.box_id
        doc["batches"] = [b.to_dict() for b in self.batches]
        doc["rows"] = self.rows
        # Compact (C-encoded) JSON: a few ms and about half the bytes of an indented one for a long session.
        return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> UploadedManifest:
        """Parse an uploaded manifest; ValueError when it is not one."""
        raw = json.loads(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("batches", []), list):
            raise ValueError("not an uploaded session manifest")  # noqa: TRY004 - bad object content
        entries = raw.get("batches", [])
        session = SessionManifest.from_dict({**raw, "batches": raw.get("batch_count", len(entries))})
        try:
            return cls(session, str(raw.get("box_id", "")), [UploadedBatch.from_dict(e) for e in entries])
        except AttributeError as err:
            raise ValueError("bad batch entry in the uploaded manifest") from err
