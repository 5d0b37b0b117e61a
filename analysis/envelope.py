"""Min/max envelope per pixel column: reduces any amount of data to what a plot can show.

The time span is cut into ``width`` equal buckets. Each chunk of data (a frame, a batch, a dask partition)
adds its per-bucket min and max with ``numpy.fmin/fmax.reduceat`` on contiguous columns, so a day at
8 ch x 1 kHz is reduced in about a second and never has to be in memory at once. Empty buckets stay NaN
and show as holes (recording gaps) in the plot. Stored one-second envelopes (kernel.envelope) fold into the
same buckets with ``add_bins``, so a day is drawn without reading its samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.errors import AnalysisError
from analysis.transforms import channel_names
from kernel.envelope import BIN_COLUMN, ROWS_COLUMN, envelope_channels, max_column, min_column


@dataclasses.dataclass
class Envelope:
    """Per-bucket minimum and maximum of each channel over a time span."""

    edges: pd.DatetimeIndex  # width + 1 bucket boundaries
    channels: list[str]
    mins: np.ndarray  # (width, channels), NaN where a bucket has no data
    maxs: np.ndarray
    counts: np.ndarray  # (width,) samples per bucket

    @property
    def centres(self) -> pd.DatetimeIndex:
        """Middle time of each bucket."""
        e = self.edges.as_unit("ns").asi8
        return pd.DatetimeIndex(pd.to_datetime((e[:-1] + e[1:]) // 2, utc=True))


class EnvelopeBuilder:
    """Accumulates chunks of a frame into an Envelope of fixed span and width."""

    def __init__(self, start: pd.Timestamp, end: pd.Timestamp, width: int, channels: list[str]) -> None:
        if width < 1:
            raise AnalysisError("envelope width must be >= 1 bucket")
        if not end > start:
            raise AnalysisError("envelope span must have end > start")
        self.start_ns = pd.Timestamp(start).as_unit("ns").value
        self.end_ns = pd.Timestamp(end).as_unit("ns").value
        self.width = width
        self.channels = list(channels)
        self.edges_ns = np.linspace(self.start_ns, self.end_ns, width + 1).astype("int64")
        self.edges_ns[-1] = self.end_ns + 1  # the last sample at exactly ``end`` belongs to the last bucket
        self.mins = np.full((width, len(channels)), np.nan)
        self.maxs = np.full((width, len(channels)), np.nan)
        self.counts = np.zeros(width, dtype="int64")

    def add(self, frame: pd.DataFrame) -> EnvelopeBuilder:
        """Fold one chunk (any time order between chunks; sorted within) into the envelope."""
        if len(frame) == 0:
            return self
        if not frame.index.is_monotonic_increasing:
            frame = frame.sort_index()
        t = frame.index.as_unit("ns").asi8
        pos = np.searchsorted(t, self.edges_ns)  # first row at or after each edge
        counts = np.diff(pos)
        full = np.flatnonzero(counts > 0)
        if full.size == 0:
            return self
        starts = pos[full]
        self.counts[full] += counts[full]
        stop = pos[full[-1] + 1]
        for j, c in enumerate(self.channels):
            x = frame[c].to_numpy(dtype="float64")[:stop]
            lo = np.fmin.reduceat(x, starts)
            hi = np.fmax.reduceat(x, starts)
            self.mins[full, j] = np.fmin(self.mins[full, j], lo)
            self.maxs[full, j] = np.fmax(self.maxs[full, j], hi)
        return self

    def add_bins(self, table: pa.Table) -> EnvelopeBuilder:
        """Fold a stored envelope (kernel.envelope: one-second bins, in time order) into the envelope.

        A bin counts in the bucket its start falls in, so bucket edges are as exact as one bin (1 s).
        """
        if table.num_rows == 0:
            return self
        t = table.column(BIN_COLUMN).cast("int64").to_numpy() * 1000  # us -> ns
        pos = np.searchsorted(t, self.edges_ns)
        counts = np.diff(pos)
        full = np.flatnonzero(counts > 0)
        if full.size == 0:
            return self
        starts = pos[full]
        stop = pos[full[-1] + 1]
        self.counts[full] += np.add.reduceat(table.column(ROWS_COLUMN).to_numpy()[:stop], starts)
        stored = set(envelope_channels(table))
        for j, c in enumerate(self.channels):
            if c not in stored:
                continue
            lo = np.fmin.reduceat(table.column(min_column(c)).to_numpy(zero_copy_only=False)[:stop], starts)
            hi = np.fmax.reduceat(table.column(max_column(c)).to_numpy(zero_copy_only=False)[:stop], starts)
            self.mins[full, j] = np.fmin(self.mins[full, j], lo)
            self.maxs[full, j] = np.fmax(self.maxs[full, j], hi)
        return self

    def merge(self, other: EnvelopeBuilder | Envelope) -> EnvelopeBuilder:
        """Combine with a builder or envelope of the same span and width (e.g. partial results of workers)."""
        self.mins = np.fmin(self.mins, other.mins)
        self.maxs = np.fmax(self.maxs, other.maxs)
        self.counts += other.counts
        return self

    def result(self) -> Envelope:
        """The envelope so far."""
        edges = self.edges_ns.copy()
        edges[-1] = self.end_ns
        return Envelope(
            pd.DatetimeIndex(pd.to_datetime(edges, utc=True)),
            self.channels,
            self.mins.copy(),
            self.maxs.copy(),
            self.counts.copy(),
        )


def envelope(frame: pd.DataFrame, width: int, channels: Iterable[str] | None = None) -> Envelope:
    """Envelope of an in-memory frame over its own time span."""
    names = channel_names(frame, channels)
    if len(frame) < 2:
        raise AnalysisError("need at least two samples for an overview")
    return EnvelopeBuilder(frame.index.min(), frame.index.max(), width, names).add(frame).result()


def envelope_chunks(
    chunks: Iterable[pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp, width: int, channels: list[str]
) -> Envelope:
    """Envelope of a stream of chunks (e.g. one batch at a time) over [start, end]."""
    builder = EnvelopeBuilder(start, end, width, channels)
    for chunk in chunks:
        builder.add(chunk)
    return builder.result()


def envelope_dask(
    ddf: object, start: pd.Timestamp, end: pd.Timestamp, width: int, channels: list[str]
) -> Envelope:
    """Envelope of a dask DataFrame: one partial envelope per partition (on the cluster), merged here."""
    import dask

    def part(frame: pd.DataFrame) -> EnvelopeBuilder:
        return EnvelopeBuilder(start, end, width, channels).add(frame)

    partials = [dask.delayed(part)(d) for d in ddf.to_delayed()]  # type: ignore[attr-defined]
    (results,) = dask.compute(partials)
    total = EnvelopeBuilder(start, end, width, channels)
    for r in results:
        total.merge(r)
    return total.result()
