"""Pure signal transformations on loaded frames: each returns a new frame and leaves its input alone.

Channel functions act on every float channel (or on ``channels``) and keep the ``seq`` counter untouched.
Filters are zero-phase (``scipy.signal.sosfiltfilt``); the sample rate comes from the time index unless
given. NaN values propagate through filters: fill or drop them first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, UnknownChannel
from kernel.batch import SEQ_COLUMN


def _signal() -> ModuleType:
    """scipy.signal, imported when a filter runs (it takes most of a second: overviews and exports skip it)."""
    from scipy import signal

    return signal


def channel_names(frame: pd.DataFrame, channels: Iterable[str] | None = None) -> list[str]:
    """The signal channels of a frame (every column except the seq counter), or the requested ones."""
    if channels is None:
        return [c for c in frame.columns if c != SEQ_COLUMN]
    wanted = list(channels)
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise UnknownChannel(
            f"unknown channel(s) {', '.join(missing)}; have: {', '.join(map(str, frame.columns))}"
        )
    return wanted


def sample_rate(frame: pd.DataFrame | pd.Series | pd.DatetimeIndex) -> float:
    """Sample rate in Hz inferred from the time index, robust to gaps and to host times stamped per read.

    With one time per sample the rate is 1 / the median step. The reader, though, stamps every line of one
    serial read with the same host time (and a device that streamed before the reader opened the port
    arrives as one burst). Then the rate is taken over runs of reads: lines received in reads k+1..k+K over
    the time from read k to read k+K, for 16 such runs, and the median run wins, so bursts and pauses do
    not bias it.
    """
    index = frame if isinstance(frame, pd.DatetimeIndex) else frame.index
    if len(index) < 2:
        raise AnalysisError("need at least two samples to infer a sample rate")
    t = index.as_unit("ns").asi8
    steps = np.diff(t)
    moving = steps[steps > 0]
    if moving.size == 0:
        raise AnalysisError("time index does not advance; cannot infer a sample rate")
    if moving.size >= 0.9 * steps.size:  # (about) one stamp per sample
        return 1e9 / float(np.median(moving))
    starts = np.r_[0, np.flatnonzero(steps > 0) + 1, len(t)]  # first line of each read, then the end
    reads = len(starts) - 1
    if reads < 2:
        raise AnalysisError("time index does not advance; cannot infer a sample rate")
    k = max(1, reads // 16)
    first = np.arange(0, reads - k, k)
    lines = starts[first + k + 1] - starts[first + 1]
    elapsed = (t[starts[first + k]] - t[starts[first]]).astype("float64")
    return float(np.median(lines * 1e9 / elapsed))


def typical_step(frame: pd.DataFrame | pd.DatetimeIndex) -> float:
    """Median of the non-zero steps between host times, in seconds (a sample period, or a read interval)."""
    index = frame if isinstance(frame, pd.DatetimeIndex) else frame.index
    steps = np.diff(index.as_unit("ns").asi8)
    moving = steps[steps > 0]
    return float(np.median(moving)) / 1e9 if moving.size else 0.0


def _apply(
    frame: pd.DataFrame, channels: Iterable[str] | None, func: Callable[[np.ndarray], np.ndarray]
) -> pd.DataFrame:
    out = frame.copy()
    for c in channel_names(frame, channels):
        out[c] = func(frame[c].to_numpy(dtype="float64"))
    return out


def resample(frame: pd.DataFrame, rule: str, how: str = "mean") -> pd.DataFrame:
    """Resample onto a regular grid (pandas rule such as "10ms" or "1s") aggregating with ``how``."""
    agg = {c: how for c in channel_names(frame)}
    if SEQ_COLUMN in frame.columns:
        agg[SEQ_COLUMN] = "first"
    return frame.resample(rule).agg(agg)[list(frame.columns)]


def decimate(frame: pd.DataFrame, factor: int, channels: Iterable[str] | None = None) -> pd.DataFrame:
    """Keep every ``factor``-th sample after a zero-phase anti-alias low-pass (scipy.signal.decimate)."""
    if factor < 1:
        raise AnalysisError("decimation factor must be >= 1")
    if factor == 1:
        return frame.copy()
    names = channel_names(frame, channels)
    out = frame.iloc[::factor].copy()
    for c in names:
        values = frame[c].to_numpy(dtype="float64")
        out[c] = _signal().decimate(values, factor, ftype="fir", zero_phase=True)[: len(out)]
    return out


def detrend(frame: pd.DataFrame, kind: str = "linear", channels: Iterable[str] | None = None) -> pd.DataFrame:
    """Remove a linear trend (``kind="linear"``) or the mean (``kind="constant"``) from each channel."""
    return _apply(frame, channels, lambda x: _signal().detrend(x, type=kind))


def moving_average(
    frame: pd.DataFrame, window: int | str, channels: Iterable[str] | None = None
) -> pd.DataFrame:
    """Centred moving average over ``window`` samples (int) or a time span such as "50ms"."""
    names = channel_names(frame, channels)
    out = frame.copy()
    out[names] = frame[names].rolling(window, center=True, min_periods=1).mean()
    return out


def _rate(frame: pd.DataFrame, rate: float | None) -> float:
    return float(rate) if rate else sample_rate(frame)


def _check_freq(freq: float, rate: float) -> None:
    if not 0 < freq < rate / 2:
        raise AnalysisError(f"frequency {freq} Hz must be between 0 and Nyquist ({rate / 2:g} Hz)")


def bandpass(
    frame: pd.DataFrame,
    low: float,
    high: float,
    order: int = 4,
    rate: float | None = None,
    channels: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Zero-phase Butterworth band-pass keeping ``low``..``high`` Hz."""
    if low >= high:
        raise AnalysisError(f"band-pass needs low < high (got {low} and {high} Hz)")
    return _butterworth(frame, [low, high], "bandpass", order, rate, channels)


def _butterworth(
    frame: pd.DataFrame, cutoffs: list[float], btype: str, order: int, rate: float | None,
    channels: Iterable[str] | None,
) -> pd.DataFrame:
    """A zero-phase (forward-backward) Butterworth filter of the given type."""
    fs = _rate(frame, rate)
    for f in cutoffs:
        _check_freq(f, fs)
    sos = _signal().butter(order, cutoffs if len(cutoffs) > 1 else cutoffs[0], btype=btype, fs=fs, output="sos")
    return _apply(frame, channels, lambda x: _signal().sosfiltfilt(sos, x))


def lowpass(
    frame: pd.DataFrame,
    cutoff: float,
    order: int = 4,
    rate: float | None = None,
    channels: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Zero-phase Butterworth low-pass below ``cutoff`` Hz."""
    return _butterworth(frame, [cutoff], "lowpass", order, rate, channels)


def highpass(
    frame: pd.DataFrame,
    cutoff: float,
    order: int = 4,
    rate: float | None = None,
    channels: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Zero-phase Butterworth high-pass above ``cutoff`` Hz."""
    return _butterworth(frame, [cutoff], "highpass", order, rate, channels)


def notch(
    frame: pd.DataFrame,
    freq: float,
    quality: float = 30.0,
    rate: float | None = None,
    channels: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Zero-phase notch removing ``freq`` Hz (e.g. 50/60 Hz mains); ``quality`` = freq / bandwidth."""
    fs = _rate(frame, rate)
    _check_freq(freq, fs)
    b, a = _signal().iirnotch(freq, quality, fs=fs)
    sos = _signal().tf2sos(b, a)
    return _apply(frame, channels, lambda x: _signal().sosfiltfilt(sos, x))


def normalise(
    frame: pd.DataFrame, method: str = "zscore", channels: Iterable[str] | None = None
) -> pd.DataFrame:
    """Scale each channel: ``zscore`` (mean 0, std 1) or ``minmax`` (0..1); constant channels become 0."""

    def zscore(x: np.ndarray) -> np.ndarray:
        std = np.nanstd(x)
        return (x - np.nanmean(x)) / std if std > 0 else np.zeros_like(x)

    def minmax(x: np.ndarray) -> np.ndarray:
        lo, hi = np.nanmin(x), np.nanmax(x)
        return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)

    funcs = {"zscore": zscore, "minmax": minmax}
    if method not in funcs:
        raise AnalysisError(f"normalisation must be one of {', '.join(funcs)}, not {method!r}")
    return _apply(frame, channels, funcs[method])


def spectrum(series: pd.Series, rate: float | None = None) -> pd.Series:
    """One-sided amplitude spectrum of a channel (mean removed, Hann window), indexed by frequency in Hz."""
    fs = float(rate) if rate else sample_rate(series)
    x = series.to_numpy(dtype="float64")
    x = (x - x.mean()) * np.hanning(len(x))
    amp = np.abs(np.fft.rfft(x)) * 2 / max(1, len(x))
    return pd.Series(amp, index=pd.Index(np.fft.rfftfreq(len(x), 1 / fs), name="hz"), name=series.name)


def peak_frequency(series: pd.Series, rate: float | None = None) -> float:
    """Frequency (Hz) of the largest spectral peak of a channel, ignoring DC."""
    spec = spectrum(series, rate)
    return float(spec.iloc[1:].idxmax())
