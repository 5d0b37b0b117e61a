"""Load sessions into pandas (parallel Arrow readers, one concat) or lazily into a dask DataFrame."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.errors import BadTimeRange, UnknownChannel
from analysis.markers import resolve_refs
from analysis.readers import TIME_TYPE, read_batch, read_batch_frame, table_to_frame
from analysis.settings import AnalysisSettings, time_column
from analysis.sources import BatchRef, Selection, SessionInfo, resolve, with_spans
from analysis.timerange import TimeLike, Window
from kernel.batch import SAMPLE_TIME_COLUMN, SEQ_COLUMN, parse_time

log = logging.getLogger(__name__)

Progress = Callable[[int], Any]  # called with the number of batches just finished


@dataclasses.dataclass
class Plan:
    """What a load will read: the selection, the batches overlapping the window, columns and window bounds."""

    selection: Selection
    batches: list[BatchRef]
    columns: list[str]
    start: pd.Timestamp | None
    end: pd.Timestamp | None


def check_channels(available: list[str], wanted: Iterable[str] | None) -> list[str]:
    """Return the requested device columns, or all of them; raises UnknownChannel for a name not recorded."""
    if wanted is None:
        return list(available)
    wanted = list(wanted)
    missing = [c for c in wanted if c not in available]
    if missing:
        raise UnknownChannel(f"unknown channel(s) {', '.join(missing)}; recorded: {', '.join(available)}")
    return wanted


def plan(
    source: str | os.PathLike[str] | Selection,
    *,
    device: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    duration: TimeLike = None,
    channels: Iterable[str] | None = None,
    settings: AnalysisSettings | None = None,
    need_spans: bool = False,
) -> Plan:
    """Resolve a source and a window to the batches to read (batch time spans prune the window)."""
    selection = source if isinstance(source, Selection) else resolve(source, device, settings)
    columns = check_channels(selection.columns, channels)
    start, end = resolve_refs(selection, (start, end), settings)  # marker:LABEL -> that marker's time
    window = Window.parse(start, end, duration)
    batches = selection.batches
    if window.unbounded and not need_spans:
        return Plan(selection, batches, columns, None, None)
    spans = [_session_span(s) for s in selection.sessions]
    firsts = [a for a, _ in spans if a is not None]
    lasts = [b for _, b in spans if b is not None]
    if not firsts or not lasts or window.unbounded:
        if any(isinstance(x, pd.Timedelta) for x in (window.start, window.end)):
            raise BadTimeRange(f"{selection.source}: recording times unknown, give absolute start/end times")
        t0, t1 = _abs(window.start), _abs(window.end)
    else:
        t0, t1 = window.resolve(min(firsts), max(lasts))
    keep: list[BatchRef] = []
    for session, (s_first, s_last) in zip(selection.sessions, spans, strict=True):
        if (t0 is not None and s_last is not None and s_last < t0) or (
            t1 is not None and s_first is not None and s_first >= t1
        ):
            continue
        keep += [
            b
            for b in session.batches
            if b.first is None
            or b.last is None
            or ((t0 is None or b.last >= t0) and (t1 is None or b.first < t1))
        ]
    return Plan(selection, keep, columns, t0, t1)


def _session_span(session: SessionInfo) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First/last sample time from the batches, else the manifest's start/end (S3 without batch times)."""
    session.batches = with_spans(session.batches)
    firsts = [b.first for b in session.batches if b.first is not None]
    lasts = [b.last for b in session.batches if b.last is not None]
    if len(firsts) == len(lasts) == len(session.batches):
        return min(firsts), max(lasts)
    m = session.manifest
    try:
        first = pd.Timestamp(parse_time(m.started_at)) if m.started_at else None
        last = pd.Timestamp(parse_time(m.ended_at)) if m.closed and m.ended_at else None
    except ValueError:
        return None, None
    return first, last


def _abs(value: pd.Timestamp | pd.Timedelta | None) -> pd.Timestamp | None:
    return value if isinstance(value, pd.Timestamp) else None


def filter_window(
    table: pa.Table, t0: pd.Timestamp | None, t1: pd.Timestamp | None, column: str = SAMPLE_TIME_COLUMN
) -> pa.Table:
    """Rows of a batch-schema table with t0 <= time < t1 (None = unbounded) on the given time column."""
    if t0 is None and t1 is None:
        return table
    times = table.column(column)
    mask = None
    if t0 is not None:
        mask = pc.greater_equal(times, pa.scalar(t0.to_pydatetime(), TIME_TYPE))
    if t1 is not None:
        upper = pc.less(times, pa.scalar(t1.to_pydatetime(), TIME_TYPE))
        mask = upper if mask is None else pc.and_(mask, upper)
    return table.filter(mask)


def read_tables(
    batches: list[BatchRef],
    columns: list[str] | None,
    settings: AnalysisSettings,
    progress: Progress | None = None,
) -> list[pa.Table]:
    """Read batches in parallel threads, keeping their order."""

    def one(ref: BatchRef) -> pa.Table:
        table = read_batch(ref, columns, settings)
        if progress is not None:
            progress(1)
        return table

    if len(batches) <= 1:
        return [one(b) for b in batches]
    with ThreadPoolExecutor(max_workers=min(settings.threads, len(batches))) as pool:
        return list(pool.map(one, batches))


def iter_tables(
    p: Plan, settings: AnalysisSettings | None = None, progress: Progress | None = None, decimals: bool = False
) -> Iterator[pa.Table]:
    """Yield the planned batches one by one, in order, already windowed; a few are read ahead in threads.

    Memory stays at about ``settings.threads`` batches whatever the total (for overviews and exports).
    ``decimals``: channel fields carry the device's decimal places (for CSV exports).
    """
    settings = settings or AnalysisSettings()
    batches = iter(p.batches)
    with ThreadPoolExecutor(max_workers=settings.threads) as pool:
        pending = collections.deque(
            pool.submit(read_batch, ref, p.columns, settings, decimals)
            for ref in itertools.islice(batches, settings.threads)
        )
        while pending:
            table = pending.popleft().result()
            ref = next(batches, None)
            if ref is not None:
                pending.append(pool.submit(read_batch, ref, p.columns, settings, decimals))
            if progress is not None:
                progress(1)
            yield filter_window(table, p.start, p.end, time_column(settings))


def load(
    source: str | os.PathLike[str] | Selection,
    *,
    device: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    duration: TimeLike = None,
    channels: Iterable[str] | None = None,
    lazy: bool = False,
    scheduler: str | None = None,
    settings: AnalysisSettings | None = None,
    progress: Progress | None = None,
) -> Any:
    """Load a session, a device's sessions or a time range as a DataFrame indexed by UTC time: the sample time
    (``settings.time_axis``, "sample"; host time for batches recorded without it) or the host time ("host").

    ``source`` is a session folder, a device folder, a data directory (with ``device``) or an ``s3://`` URL.
    ``channels`` selects device columns (default all, ``seq`` included). ``start``/``end``/``duration`` take
    absolute times or offsets from the first sample. With ``lazy=True`` (or a ``scheduler`` address) the
    result is a dask DataFrame with one partition per batch, computed on that dask.distributed cluster.
    """
    settings = settings or AnalysisSettings()
    scheduler = scheduler or settings.scheduler
    if lazy or scheduler:
        return load_lazy(
            source,
            device=device,
            start=start,
            end=end,
            duration=duration,
            channels=channels,
            scheduler=scheduler,
            settings=settings,
        )
    p = plan(
        source, device=device, start=start, end=end, duration=duration, channels=channels, settings=settings
    )
    return load_plan(p, settings, progress)


def load_plan(
    p: Plan, settings: AnalysisSettings | None = None, progress: Progress | None = None
) -> pd.DataFrame:
    """Read a planned load into one DataFrame: batches in parallel threads, a single concat, one conversion."""
    settings = settings or AnalysisSettings()
    log.info("loading %d batches from %s", len(p.batches), p.selection.source)
    tables = read_tables(p.batches, p.columns, settings, progress)
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    table = filter_window(table, p.start, p.end, time_column(settings))
    if p.start is not None and table.num_rows == 0:
        raise BadTimeRange(
            f"no samples between {p.start.isoformat()} and {p.end.isoformat() if p.end else 'end'}"
        )
    return table_to_frame(table, settings)


def empty_frame(columns: list[str], time_axis: str = SAMPLE_TIME_COLUMN) -> pd.DataFrame:
    """A zero-row frame with the loaded schema (dask's ``meta``)."""
    data = {c: pd.Series([], dtype="int64" if c == SEQ_COLUMN else "float64") for c in columns}
    index = pd.DatetimeIndex([], dtype="datetime64[us, UTC]", name=time_axis)
    return pd.DataFrame(data, index=index)


def _read_partition(
    ref: BatchRef,
    columns: list[str],
    settings: AnalysisSettings,
    t0: pd.Timestamp | None,
    t1: pd.Timestamp | None,
) -> pd.DataFrame:
    frame = read_batch_frame(ref, columns, settings)
    if t0 is not None or t1 is not None:
        idx = frame.index
        mask = (idx >= t0 if t0 is not None else True) & (idx < t1 if t1 is not None else True)
        frame = frame[mask]
    return frame


def load_lazy(
    source: str | os.PathLike[str] | Selection,
    *,
    device: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    duration: TimeLike = None,
    channels: Iterable[str] | None = None,
    scheduler: str | None = None,
    settings: AnalysisSettings | None = None,
) -> Any:
    """A dask DataFrame with one partition per batch, built from the same per-file readers as ``load``."""

    settings = settings or AnalysisSettings()
    if scheduler:
        from analysis.cluster import connect

        connect(scheduler)
    p = plan(
        source,
        device=device,
        start=start,
        end=end,
        duration=duration,
        channels=channels,
        settings=settings,
        need_spans=True,
    )
    return lazy_frame(p, settings)


def lazy_frame(p: Plan, settings: AnalysisSettings | None = None) -> Any:
    """The dask DataFrame of a plan (made with ``need_spans=True`` so divisions are known when possible)."""
    import dask.dataframe as dd

    settings = settings or AnalysisSettings()
    divisions = None
    spans = [(b.first, b.last) for b in p.batches]
    if all(a is not None and b is not None for a, b in spans) and all(
        spans[i][1] < spans[i + 1][0] for i in range(len(spans) - 1)
    ):
        lows = [max(a, p.start) if p.start is not None else a for a, _ in spans]
        last = spans[-1][1] if p.end is None else min(spans[-1][1], p.end - pd.Timedelta(microseconds=1))
        divisions = (*lows, last)
    return dd.from_map(
        _read_partition,
        p.batches,
        columns=p.columns,
        settings=settings,
        t0=p.start,
        t1=p.end,
        meta=empty_frame(p.columns, time_column(settings)),
        divisions=divisions,
        label="read-batch",
        enforce_metadata=False,
    )
