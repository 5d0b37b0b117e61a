"""The overview command's data: stored envelopes (kernel.envelope) where they exist, samples elsewhere.

For each planned session, in order of preference: the session's envelope (``envelope.parquet`` in the
session folder or next to its uploaded manifest), else each batch's envelope in the uploader's staging
folder (a session still recording or not yet published), else the batch's samples. Stored envelopes have
one-second bins, so they are used only when a pixel column spans at least a second (a day, an hour at
normal widths); shorter windows read the samples, exact to the pixel.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from analysis import s3
from analysis.cluster import connect
from analysis.envelope import Envelope, EnvelopeBuilder, envelope_dask
from analysis.loading import Plan, iter_tables, lazy_frame, load_plan
from analysis.readers import table_to_frame
from analysis.settings import AnalysisSettings
from analysis.sources import BatchRef, SessionInfo, with_spans
from kernel.batch import SEQ_COLUMN
from kernel.envelope import BIN_COLUMN, BIN_US, read_envelope
from kernel.layout import batch_stem, envelope_path
from kernel.objects import CSV, envelope_key
from kernel.upload_state import envelope_file, staging_dir

log = logging.getLogger(__name__)

BIN = pd.Timedelta(microseconds=BIN_US)


@dataclasses.dataclass
class Coverage:
    """What a plan's overview can read: stored envelope tables, and the batches that have none."""

    stored: list[pa.Table]
    samples: list[BatchRef]
    sessions: int = 0  # sessions with their own envelope

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        """First and last time the stored envelopes cover (None without any)."""
        lows = [t.column(BIN_COLUMN)[0].as_py() for t in self.stored if t.num_rows]
        highs = [t.column(BIN_COLUMN)[t.num_rows - 1].as_py() for t in self.stored if t.num_rows]
        if not lows:
            return None
        return pd.Timestamp(min(lows)), pd.Timestamp(max(highs)) + BIN - pd.Timedelta(microseconds=1)


def coverage(p: Plan, settings: AnalysisSettings) -> Coverage:
    """The stored envelopes behind a plan's batches, and the batches left to read from samples."""
    planned = {b.location for b in p.batches}
    out = Coverage([], [])
    for session in p.selection.sessions:
        refs = [b for b in session.batches if b.location in planned]
        if not refs:
            continue
        table = session_envelope(session, settings)
        if table is not None:
            out.stored.append(table)
            out.sessions += 1
            continue
        for ref in refs:
            staged = staged_envelope(ref)
            if staged is None:
                out.samples.append(ref)
            else:
                out.stored.append(staged)
    return out


def _read(source: Any, where: str) -> pa.Table | None:
    """An envelope, or None (with a warning) when the file is damaged: the samples are read instead."""
    try:
        return read_envelope(source)
    except ValueError as err:
        log.warning("%s: %s; reading the samples instead", where, err)
        return None


def session_envelope(session: SessionInfo, settings: AnalysisSettings) -> pa.Table | None:
    """A session's stored envelope, on disk or S3, or None."""
    if s3.is_s3_url(session.location):
        bucket, prefix = s3.parse_s3_url(session.location)
        data = s3.get_bytes_or_none(settings, bucket, envelope_key(prefix))
        return None if data is None else _read(data, f"s3://{bucket}/{envelope_key(prefix)}")
    path = envelope_path(Path(session.location))
    return _read(path, str(path)) if path.is_file() else None


def staged_envelope(ref: BatchRef) -> pa.Table | None:
    """The envelope the uploader wrote for a local committed batch, or None."""
    if ref.is_s3 or ref.format != CSV:
        return None
    batch = Path(ref.location)
    path = envelope_file(staging_dir(batch.parent), batch_stem(batch))
    return _read(path, str(path)) if path.is_file() else None


@dataclasses.dataclass
class Overview:
    """An overview's envelope, and a note for the user when samples had to be read (None otherwise)."""

    envelope: Envelope
    note: str | None = None
    stored: int = 0  # stored envelope tables folded in
    sampled: int = 0  # batches read from samples


def overview_envelope(
    p: Plan, settings: AnalysisSettings, width: int, *, from_samples: bool = False, bar: Any = None
) -> Overview:
    """The min/max envelope of a plan at ``width`` buckets: stored envelopes where they are fine enough,
    samples (one batch in memory at a time, or on the dask cluster) for the rest."""
    names = [c for c in p.columns if c != SEQ_COLUMN]
    cover = Coverage([], list(p.batches)) if from_samples else coverage(p, settings)
    # Time spans: of the batches read from samples (first and last line of local files), of the stored
    # envelopes, and of the others when known already (S3 manifest); a day with its envelope opens no batch.
    cover.samples = with_spans(cover.samples)
    refs = [b for b in p.batches if b.first is not None and b.last is not None]
    firsts = [b.first for b in [*refs, *cover.samples] if b.first is not None]
    lasts = [b.last for b in [*refs, *cover.samples] if b.last is not None]
    if (span := cover.span) is not None and len(refs) < len(p.batches):
        firsts, lasts = [*firsts, span[0]], [*lasts, span[1]]
    frame = None
    if not firsts:  # times unknown (an S3 session without its manifest): read it all first
        frame = load_plan(p, settings)
        firsts, lasts = [frame.index.min()], [frame.index.max()]
    start = p.start or min(firsts)
    end = min(p.end, max(lasts)) if p.end is not None else max(lasts)
    builder = EnvelopeBuilder(start, end, width, names)
    out = Overview(builder.result())
    samples = list(p.batches)
    if frame is not None:
        builder.add(frame)
        samples = []
    elif cover.stored and (end - start) / width >= BIN:
        for table in cover.stored:
            builder.add_bins(table)
        out.stored, samples = len(cover.stored), cover.samples
        if samples:
            out.note = f"{len(samples)} of {len(p.batches)} batches have no stored envelope: reading their samples"
    elif not from_samples and not cover.stored and samples:
        out.note = f"no stored envelope: reading the samples of {len(samples)} batches"
    log.info("overview: %d stored envelope(s), %d batch(es) from samples", out.stored, len(samples))
    if samples:
        rest = dataclasses.replace(p, batches=samples)
        if settings.scheduler:  # one partial envelope per batch, computed on the dask.distributed cluster
            connect(settings.scheduler)
            builder.merge(envelope_dask(lazy_frame(rest, settings), start, end, width, names))
        else:
            if bar is not None:
                bar.reset(total=len(samples))
            for table in iter_tables(rest, settings, None if bar is None else bar.update):
                builder.add(table_to_frame(table, settings))
    out.envelope, out.sampled = builder.result(), len(samples)
    return out
