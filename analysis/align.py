"""Align two recordings of a channel on one time grid, for overlaying and comparing them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.choices import ALIGN_METHODS
from analysis.errors import AnalysisError
from analysis.transforms import sample_rate, typical_step

METHODS = ALIGN_METHODS


@dataclasses.dataclass
class Alignment:
    """Two series on a common grid (indexed by the first one's time) and the offset applied to the second."""

    frame: pd.DataFrame
    offset: pd.Timedelta  # subtracted from the second series' times to line it up with the first
    rate: float
    method: str


def _interp(series: pd.Series, times_ns: np.ndarray, shift_ns: int) -> np.ndarray:
    """Linear interpolation at ``times_ns``; NaN inside recording gaps (nothing is invented across them)."""
    t = series.index.as_unit("ns").asi8 - shift_ns
    out = np.interp(times_ns.astype("float64"), t.astype("float64"), series.to_numpy(dtype="float64"))
    limit = 5e9 * max(1.0 / sample_rate(series), typical_step(series))
    right = np.clip(np.searchsorted(t, times_ns), 1, len(t) - 1)
    out[(t[right] - t[right - 1]) > limit] = np.nan
    return out


def _grid(a: pd.Series, b: pd.Series, shift_ns: int, rate: float) -> np.ndarray:
    ta, tb = a.index.as_unit("ns").asi8, b.index.as_unit("ns").asi8 - shift_ns
    lo, hi = max(ta[0], tb[0]), min(ta[-1], tb[-1])
    if hi <= lo:
        raise AnalysisError(
            "the two recordings do not overlap after alignment; give an --offset or use --align start"
        )
    step = 1e9 / rate
    return (lo + np.arange(int((hi - lo) // step) + 1) * step).astype("int64")


def xcorr_lag(a: np.ndarray, b: np.ndarray, rate: float, max_lag: float | None = None) -> float:
    """Delay of ``b`` relative to ``a`` in seconds (positive: b lags), from the peak of their cross-correlation."""
    from scipy import signal  # imported on use: most of a second that other commands need not pay

    a = signal.detrend(np.nan_to_num(a - np.nanmean(a)))
    b = signal.detrend(np.nan_to_num(b - np.nanmean(b)))
    corr = signal.correlate(a, b, mode="full", method="fft")
    lags = signal.correlation_lags(len(a), len(b), mode="full")
    if max_lag is not None:
        keep = np.abs(lags) <= max_lag * rate
        corr, lags = corr[keep], lags[keep]
    return float(-lags[int(np.argmax(corr))] / rate)


def align(
    a: pd.Series,
    b: pd.Series,
    *,
    method: str = "start",
    offset: float | pd.Timedelta | None = None,
    rate: float | None = None,
    max_lag: float | None = None,
    labels: tuple[str, str] = ("a", "b"),
) -> Alignment:
    """Put ``b`` on ``a``'s time grid.

    ``method``: "time" keeps wall-clock times (simultaneous recordings), "start" lines up the first samples,
    "xcorr" lines up the starts and then refines by cross-correlation within ``max_lag`` seconds.
    An explicit ``offset`` (seconds or Timedelta, subtracted from b's times) overrides the method's start.
    Both series are linearly interpolated onto a grid at ``rate`` Hz (default: the lower of the two rates)
    over their overlap.
    """
    if method not in METHODS:
        raise AnalysisError(f"alignment must be one of {', '.join(METHODS)}, not {method!r}")
    if len(a) < 2 or len(b) < 2:
        raise AnalysisError("each recording needs at least two samples to align")
    fs = float(rate) if rate else min(sample_rate(a), sample_rate(b))
    if offset is not None:
        shift = pd.Timedelta(seconds=offset) if not isinstance(offset, pd.Timedelta) else offset
    elif method == "time":
        shift = pd.Timedelta(0)
    else:
        shift = b.index[0] - a.index[0]
    if method == "xcorr":
        grid = _grid(a, b, shift.value, fs)
        lag = xcorr_lag(_interp(a, grid, 0), _interp(b, grid, shift.value), fs, max_lag)
        shift = shift + pd.Timedelta(seconds=lag)
    grid = _grid(a, b, shift.value, fs)
    index = pd.DatetimeIndex(pd.to_datetime(grid, utc=True), name=a.index.name)
    frame = pd.DataFrame(
        {labels[0]: _interp(a, grid, 0), labels[1]: _interp(b, grid, shift.value)}, index=index
    )
    return Alignment(frame, shift, fs, method)
