"""Figures with matplotlib's Agg backend (no display): waveform, comparison overlay and min/max overview.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot global state), sized in pixels, and saved
as PNG, SVG or PDF according to the file extension. The x axis is time since the first sample shown, in
seconds, minutes or hours, with the absolute UTC start in the axis label.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analysis.align import Alignment
from analysis.envelope import Envelope, envelope
from analysis.errors import AnalysisError
from analysis.markers import draw_markers
from analysis.transforms import channel_names
from kernel.batch import SAMPLE_TIME_COLUMN, TIME_COLUMN

FORMATS = ("png", "svg", "pdf")
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
DEFAULT_SIZE = (1600, 900)
DEFAULT_DPI = 100
# A waveform with more points than this per pixel column is drawn as an envelope (looks the same, much faster).
MAX_POINTS_PER_PIXEL = 4


def figure(width: int = DEFAULT_SIZE[0], height: int = DEFAULT_SIZE[1], dpi: int = DEFAULT_DPI) -> Figure:
    """A new Agg figure of exactly ``width`` x ``height`` pixels at ``dpi``."""
    if width < 50 or height < 50 or dpi < 10:
        raise AnalysisError("figure must be at least 50 x 50 pixels at 10 dpi")
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out: str | Path, dpi: int | None = None) -> Path:
    """Save a figure; the format comes from the extension (.png, .svg, .pdf)."""
    out = Path(out)
    ext = out.suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise AnalysisError(f"{out}: unsupported image type {ext!r}; use .png, .svg or .pdf")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=ext, dpi=dpi or fig.dpi)
    return out


def time_unit(index: pd.DatetimeIndex) -> tuple[str, float]:
    """The unit of a time axis over ``index`` and its length in seconds: h beyond 2 h, min beyond 2 min, else s."""
    span = (index[-1] - index[0]).total_seconds() if len(index) else 0.0
    return ("h", 3600.0) if span > 7200 else ("min", 60.0) if span > 120 else ("s", 1.0)


def _time_axis(index: pd.DatetimeIndex, origin: pd.Timestamp) -> tuple[np.ndarray, str]:
    seconds = (index.as_unit("ns").asi8 - origin.as_unit("ns").value) / 1e9
    unit, scale = time_unit(index)
    name = {SAMPLE_TIME_COLUMN: "sample time", TIME_COLUMN: "host time"}.get(str(index.name), "time")
    label = f"{name} ({unit}) from {origin.tz_convert('UTC').strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC"
    return seconds / scale, label


def _axes(fig: Figure, n: int) -> list[Any]:
    if n < 1:
        raise AnalysisError("nothing to plot: no channels selected")
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.08, right=0.98, top=0.94, bottom=0.08, hspace=0.12)
    return list(axes)


def draw_envelope(env: Envelope, fig: Figure, title: str | None = None, markers: pd.DataFrame | None = None) -> Figure:
    """Draw an envelope: one filled min..max band per channel (gaps stay empty), and the markers if given."""
    x, label = _time_axis(env.centres, env.edges[0])
    for j, (ax, ch) in enumerate(zip(_axes(fig, len(env.channels)), env.channels, strict=True)):
        color = COLORS[j % len(COLORS)]
        lo, hi = env.mins[:, j], env.maxs[:, j]
        ax.fill_between(x, lo, hi, color=color, linewidth=0.8, edgecolor=color, step="mid")
        ax.set_ylabel(ch)
        ax.margins(x=0)
    _markers(fig, markers, env.edges[0], env.centres)
    return _finish(fig, label, title)


def _markers(fig: Figure, markers: pd.DataFrame | None, origin: pd.Timestamp, index: pd.DatetimeIndex) -> None:
    """Draw event markers on every axes of a time plot whose x axis starts at ``origin``."""
    if markers is not None and len(markers) and len(index):
        draw_markers(fig.axes, markers, origin, time_unit(index)[1])


def _finish(fig: Figure, xlabel: str, title: str | None) -> Figure:
    """Label the shared time axis and set the title."""
    fig.axes[-1].set_xlabel(xlabel)
    if title:
        fig.suptitle(title)
    return fig


def plot_overview(
    data: pd.DataFrame | Envelope,
    channels: Iterable[str] | None = None,
    *,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
    markers: pd.DataFrame | None = None,
) -> Figure:
    """Whole-session overview as a min/max envelope with one bucket per pixel column (and event markers)."""
    fig = figure(width, height, dpi)
    env = data if isinstance(data, Envelope) else envelope(data, width, channels)
    return draw_envelope(env, fig, title, markers)


def plot_waveform(
    frame: pd.DataFrame,
    channels: Iterable[str] | None = None,
    *,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
    markers: pd.DataFrame | None = None,
) -> Figure:
    """Waveform of a window: one trace per channel, stacked, sharing the time axis (and event markers)."""
    names = channel_names(frame, channels)
    if len(frame) < 2:
        raise AnalysisError("the selected window holds fewer than two samples")
    fig = figure(width, height, dpi)
    if len(frame) > MAX_POINTS_PER_PIXEL * width:
        return draw_envelope(envelope(frame, width, names), fig, title, markers)
    x, label = _time_axis(frame.index, frame.index[0])
    for j, (ax, ch) in enumerate(zip(_axes(fig, len(names)), names, strict=True)):
        ax.plot(x, frame[ch].to_numpy(), color=COLORS[j % len(COLORS)], linewidth=1.0)
        ax.set_ylabel(ch)
        ax.margins(x=0)
    _markers(fig, markers, frame.index[0], frame.index)
    return _finish(fig, label, title)


def plot_comparison(
    alignments: Sequence[Alignment],
    *,
    width: int = DEFAULT_SIZE[0],
    height: int = DEFAULT_SIZE[1],
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
) -> Figure:
    """Overlay each aligned pair on its own axes (first in blue, second in red), offsets in the legend."""
    fig = figure(width, height, dpi)
    label = ""
    for ax, al in zip(_axes(fig, len(alignments)), alignments, strict=True):
        x, label = _time_axis(al.frame.index, al.frame.index[0])
        first, second = al.frame.columns[:2]
        ax.plot(x, al.frame[first].to_numpy(), color=COLORS[0], linewidth=1.0, label=first)
        offset = al.offset.total_seconds()
        ax.plot(
            x,
            al.frame[second].to_numpy(),
            color=COLORS[1],
            linewidth=1.0,
            label=f"{second} (shifted {offset:+.6g} s)",
        )
        ax.legend(loc="upper right", fontsize="small")
        ax.margins(x=0)
    return _finish(fig, label, title)
