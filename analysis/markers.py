"""Event markers of the selected sessions: read them (disk or S3), find one for a time window, draw them.

Markers come from each session's markers file (kernel.markers), local or uploaded. A window bound
``marker:LABEL`` is the time of the first marker with that label (``marker:LABEL#2`` the second);
:func:`draw_markers` draws markers on any figure whose x axis counts time from an origin (plot, overview).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import s3
from analysis.errors import BadData, BadTimeRange
from analysis.settings import AnalysisSettings
from analysis.sources import Selection, SessionInfo
from kernel.batch import format_time
from kernel.markers import Marker, parse_markers, read_markers
from kernel.objects import markers_key

MARKER_PREFIX = "marker:"
COLUMNS = ("time", "label", "source", "user", "session", "id")
COLOR = "#e6550d"


def session_markers(session: SessionInfo, settings: AnalysisSettings | None = None) -> list[Marker]:
    """The markers of one session, from its folder or its uploaded markers object (none when it has none)."""
    if s3.is_s3_url(session.location):
        bucket, prefix = s3.parse_s3_url(session.location)
        data = s3.get_bytes_or_none(settings or AnalysisSettings(), bucket, markers_key(prefix))
        return parse_markers(data) if data is not None else []
    try:
        return read_markers(Path(session.location))
    except OSError as err:
        raise BadData(f"{session.location}: cannot read its markers ({err.strerror or err})") from err


def markers_frame(selection: Selection, settings: AnalysisSettings | None = None) -> pd.DataFrame:
    """Every marker of the selection in time order: time (UTC), label, source, user ("" when unknown), session,
    id."""
    rows = [
        (pd.Timestamp(m.at), m.label, m.source, m.user or "", s.manifest.session_id, m.id)
        for s in selection.sessions
        for m in session_markers(s, settings)
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


def in_window(markers: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    """The markers with start <= time < end (None = unbounded)."""
    keep = pd.Series(True, index=markers.index)
    if start is not None:
        keep &= markers["time"] >= start
    if end is not None:
        keep &= markers["time"] < end
    return markers[keep].reset_index(drop=True)


def is_marker_ref(value: object) -> bool:
    """True for a window bound written ``marker:LABEL``."""
    return isinstance(value, str) and value.strip().startswith(MARKER_PREFIX)


def find_marker(markers: pd.DataFrame, ref: str) -> pd.Timestamp:
    """The time of ``marker:LABEL`` (the first with that label) or ``marker:LABEL#N`` (the N-th)."""
    spec = ref.strip()[len(MARKER_PREFIX):]
    label, nth = spec, 1
    head, sep, tail = spec.rpartition("#")
    if sep and tail.isdigit() and head:
        label, nth = head, int(tail)
    if not label or nth < 1:
        raise BadTimeRange(f"{ref!r}: write marker:LABEL or marker:LABEL#N (N = 1, 2, ...)")
    found = markers[markers["label"] == label]
    if found.empty:
        found = markers[markers["label"].str.casefold() == label.casefold()]
    if len(found) < nth:
        known = ", ".join(dict.fromkeys(markers["label"])) or "none"
        have = f"only {len(found)} marker(s) labelled {label!r}" if len(found) else f"no marker labelled {label!r}"
        raise BadTimeRange(f"{ref!r}: {have} (markers: {known})")
    return found["time"].iloc[nth - 1]


def resolve_refs(selection: Selection, values: Sequence[Any], settings: AnalysisSettings | None = None) -> list[Any]:
    """The values with every ``marker:LABEL`` replaced by that marker's time (markers read only when needed)."""
    if not any(is_marker_ref(v) for v in values):
        return list(values)
    markers = markers_frame(selection, settings)
    return [find_marker(markers, v) if is_marker_ref(v) else v for v in values]


def draw_markers(axes: Any, markers: pd.DataFrame | Iterable[tuple[pd.Timestamp, str]], origin: pd.Timestamp,
                 seconds_per_unit: float = 1.0) -> list[str]:
    """Draw markers as vertical lines on each of ``axes`` (x = time since ``origin``, in units of
    ``seconds_per_unit`` seconds), the label at the top of the first; returns the labels drawn.

    Call it after the data is drawn, with the markers of the window shown (:func:`in_window`): the x limits
    widen to a marker just outside the samples (a window that starts at a marker starts at the next sample).
    """
    axes = list(axes) if isinstance(axes, (list, tuple)) else [axes]
    items = (list(zip(markers["time"], markers["label"], strict=True)) if isinstance(markers, pd.DataFrame)
             else list(markers))
    drawn = []
    for n, (time, label) in enumerate(items):
        x = (pd.Timestamp(time) - origin).total_seconds() / seconds_per_unit
        low, high = axes[0].get_xlim()
        if not low <= x <= high:
            axes[0].set_xlim(min(low, x), max(high, x))  # the axes share x
        for ax in axes:
            ax.axvline(x, color=COLOR, linewidth=1.2, linestyle="--", gid=f"marker-{n}")
        top = axes[0]
        top.text(x, 1.0, f" {label}", transform=top.get_xaxis_transform(), color=COLOR, fontsize="small",
                 rotation=0, ha="left", va="bottom", clip_on=False, gid=f"marker-label-{n}")
        drawn.append(str(label))
    return drawn


def markers_table(markers: pd.DataFrame) -> str:
    """The markers as an aligned text table: time (batch time format), label, source, user, session."""
    if markers.empty:
        return "no markers"
    rows = [(format_time(t.to_pydatetime()), label, source, user or "-", session)
            for t, label, source, user, session in zip(markers["time"], markers["label"], markers["source"],
                                                       markers["user"], markers["session"], strict=True)]
    head = ("time", "label", "source", "user", "session")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in [head, *rows])


def markers_csv(markers: pd.DataFrame) -> str:
    """The markers as CSV (time in the batch time format), for exports."""
    out = markers.copy()
    out["time"] = [format_time(t.to_pydatetime()) for t in out["time"]]
    return out.to_csv(index=False, lineterminator="\n")
