"""Aligning two recordings: known offsets are recovered, gaps are not bridged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.align import align, xcorr_lag
from analysis.errors import AnalysisError
from analysis.synthetic import synth_frame


def chirp_frame(start: str, delay: float = 0.0, rate: float = 500) -> pd.Series:
    """A non-periodic test signal (so its cross-correlation has one peak), delayed by ``delay`` seconds."""
    f = synth_frame(start, rate, 6, 1, noise=0)
    t = np.arange(len(f)) / rate - delay
    return pd.Series(np.sin(2 * np.pi * (1 + 2 * t) * t) * np.exp(-((t - 3) ** 2)), index=f.index, name="x")


def test_xcorr_lag_sign() -> None:
    x = np.random.default_rng(0).standard_normal(1000)
    assert xcorr_lag(x, np.r_[np.zeros(25), x[:-25]], 100) == pytest.approx(0.25)


def test_xcorr_recovers_the_delay_between_sessions() -> None:
    a = chirp_frame("2026-11-25T09:00:00Z")
    b = chirp_frame("2026-11-25T14:30:00Z", delay=0.37)  # another session, event 0.37 s later
    al = align(a, b, method="xcorr", labels=("a", "b"))
    expected = (
        pd.Timestamp("2026-11-25T14:30:00Z") - pd.Timestamp("2026-11-25T09:00:00Z") + pd.Timedelta("0.37s")
    )
    assert abs((al.offset - expected).total_seconds()) <= 1 / 500
    core = al.frame.iloc[100:-100].dropna()
    assert np.max(np.abs(core["a"] - core["b"])) < 0.05
    started = align(a, b, method="start")
    assert started.offset == pd.Timestamp("2026-11-25T14:30:00Z") - pd.Timestamp("2026-11-25T09:00:00Z")


def test_explicit_offset_and_time_alignment() -> None:
    a = chirp_frame("2026-11-25T09:00:00Z")
    b = chirp_frame("2026-11-25T09:00:01Z")
    assert align(a, b, method="time").offset == pd.Timedelta(0)
    al = align(a, b, offset=1.0, rate=250)
    assert al.rate == 250 and len(al.frame) == pytest.approx(6 * 250, abs=2)
    with pytest.raises(AnalysisError, match="do not overlap"):
        align(a, b, offset=-10.0)


def test_gaps_are_not_bridged() -> None:
    a = chirp_frame("2026-11-25T09:00:00Z")
    b = a.drop(a.index[1000:1200])
    al = align(a, b, method="time")
    missing = al.frame["b"].isna()
    assert missing.any() and not al.frame["a"].isna().any()
    gap_times = al.frame.index[missing]
    assert gap_times[0] >= a.index[999] and gap_times[-1] <= a.index[1200]
