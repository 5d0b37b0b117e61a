"""Transformations: filters keep or remove known frequencies; the rest do what their names say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import transforms as tf
from analysis.errors import AnalysisError, UnknownChannel
from analysis.stats import channel_stats
from analysis.synthetic import synth_frame


@pytest.fixture(scope="module")
def mix() -> pd.DataFrame:
    """ch1 = 10 Hz + 50 Hz sines (amplitude 1 each), ch2 = a ramp, 1 kHz for 4 s, with a seq counter."""
    f = synth_frame("2026-11-25T09:00:00Z", 1000, 4, 2, freqs=(10, 1), noise=0, decimals=8)
    t = np.arange(len(f)) / 1000
    f["ch1"] = np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 50 * t)
    f["ch2"] = 3 + 2 * t
    return f


def power(x: pd.Series, hz: float, rate: float = 1000) -> float:
    """Amplitude of the spectrum at ``hz``."""
    return float(tf.spectrum(x, rate).iloc[round(hz * len(x) / rate)])


def test_sample_rate_from_index(mix: pd.DataFrame) -> None:
    assert tf.sample_rate(mix) == pytest.approx(1000)


def test_sample_rate_with_per_read_stamps() -> None:
    # 1 kHz device, host times stamped once per 20-line read, with one 2 s pause.
    n = np.arange(4000)
    stamps = (n // 20) * 20_000 + (n >= 2000) * 2_000_000  # microseconds
    index = pd.to_datetime(stamps, unit="us", utc=True)
    assert tf.sample_rate(index) == pytest.approx(1000, rel=0.01)


def test_bandpass_keeps_the_band_and_removes_the_rest(mix: pd.DataFrame) -> None:
    out = tf.bandpass(mix, 5, 20, channels=["ch1"])
    assert power(out["ch1"], 10) == pytest.approx(power(mix["ch1"], 10), rel=0.05)
    assert power(out["ch1"], 50) < 0.01 * power(mix["ch1"], 50)
    assert tf.peak_frequency(out["ch1"]) == pytest.approx(10, abs=0.5)
    pd.testing.assert_series_equal(out["seq"], mix["seq"])  # counter untouched
    pd.testing.assert_series_equal(out["ch2"], mix["ch2"])  # other channels untouched


def test_notch_removes_its_frequency_only(mix: pd.DataFrame) -> None:
    out = tf.notch(mix, 50, channels=["ch1"])
    assert power(out["ch1"], 50) < 0.02 * power(mix["ch1"], 50)
    assert power(out["ch1"], 10) == pytest.approx(power(mix["ch1"], 10), rel=0.05)


def test_filters_are_zero_phase(mix: pd.DataFrame) -> None:
    out = tf.lowpass(mix, 25, channels=["ch1"])
    ten = np.sin(2 * np.pi * 10 * np.arange(len(mix)) / 1000)
    middle = slice(500, -500)  # away from the edges
    assert np.max(np.abs(out["ch1"].to_numpy()[middle] - ten[middle])) < 0.02
    hi = tf.highpass(mix, 25, channels=["ch1"])
    assert tf.peak_frequency(hi["ch1"]) == pytest.approx(50, abs=0.5)


def test_filter_frequency_checked(mix: pd.DataFrame) -> None:
    with pytest.raises(AnalysisError, match="Nyquist"):
        tf.bandpass(mix, 10, 600)
    with pytest.raises(AnalysisError, match="low < high"):
        tf.bandpass(mix, 20, 10)
    with pytest.raises(UnknownChannel):
        tf.notch(mix, 50, channels=["nope"])


def test_detrend_removes_the_ramp(mix: pd.DataFrame) -> None:
    out = tf.detrend(mix, channels=["ch2"])
    assert np.max(np.abs(out["ch2"])) < 1e-9
    assert mix["ch2"].iloc[-1] > 10  # input left alone


def test_moving_average_smooths(mix: pd.DataFrame) -> None:
    out = tf.moving_average(mix, 100, channels=["ch1"])  # 100 samples = 1 period of 10 Hz, 5 of 50 Hz
    assert np.max(np.abs(out["ch1"].to_numpy()[200:-200])) < 0.05
    timed = tf.moving_average(mix, "100ms", channels=["ch1"])
    assert np.max(np.abs(timed["ch1"].to_numpy()[200:-200])) < 0.05


def test_normalise(mix: pd.DataFrame) -> None:
    z = tf.normalise(mix)
    assert z["ch1"].mean() == pytest.approx(0, abs=1e-9) and z["ch1"].std(ddof=0) == pytest.approx(1)
    m = tf.normalise(mix, "minmax")
    assert m["ch2"].min() == 0 and m["ch2"].max() == 1
    with pytest.raises(AnalysisError):
        tf.normalise(mix, "log")


def test_decimate_and_resample(mix: pd.DataFrame) -> None:
    d = tf.decimate(tf.lowpass(mix, 20, channels=["ch1"]), 10)
    assert len(d) == 400 and tf.sample_rate(d) == pytest.approx(100)
    assert tf.peak_frequency(d["ch1"]) == pytest.approx(10, abs=0.5)
    r = tf.resample(mix, "10ms")
    assert len(r) == 400 and r["seq"].iloc[1] == 10
    assert r["ch2"].iloc[0] == pytest.approx(mix["ch2"].iloc[:10].mean())


def test_channel_stats(mix: pd.DataFrame) -> None:
    stats = channel_stats(mix)
    assert list(stats.index) == ["ch1", "ch2"]
    assert stats.loc["ch2", "min"] == 3 and stats.loc["ch2", "max"] == pytest.approx(3 + 2 * 3.999)
    assert stats.loc["ch1", "rms"] == pytest.approx(1.0, rel=0.01)  # two unit sines: sqrt(0.5 + 0.5)
    assert stats.loc["ch1", "count"] == len(mix)
