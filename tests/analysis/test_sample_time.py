"""Sample time in the analysis: the default time axis, gaps from the counter, time quality in the summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.gaps import gap_report
from analysis.loading import load
from analysis.settings import AnalysisSettings
from analysis.synthetic import synth_frame, write_session
from kernel.manifest import ClockQuality, SessionManifest

RATE = 1000


def _jittery_session(data_dir: Path, gaps: list[int] = (), pause_at: int | None = None, n: int = 6000) -> Path:
    """A session as the reader writes it now: host times shared per (irregular) read, the sample time exact;
    counter values skipped at ``gaps`` (50 each), a 0.3 s device pause before row ``pause_at``."""
    frame = synth_frame("2026-11-29T10:00:00Z", RATE, n / RATE, channels=2)
    keep = np.ones(n, dtype=bool)
    for g in gaps:
        keep[g : g + 50] = False
    frame = frame[keep]
    sample = frame.index.as_unit("us")
    if pause_at is not None:
        sample = sample.where(np.arange(len(sample)) < pause_at, sample + pd.Timedelta(milliseconds=300))
    rng = np.random.default_rng(3)
    ends = np.cumsum(rng.integers(1, 60, size=len(frame)))  # reads of 1..60 lines
    ends = ends[ends < len(frame)]
    read_of = np.searchsorted(ends, np.arange(len(frame)), side="right")
    last_of_read = np.append(ends - 1, len(frame) - 1)[read_of]
    late = pd.to_timedelta(rng.exponential(20_000, size=len(frame)).astype("int64"), unit="us")  # busy host
    host = sample[last_of_read] + late[last_of_read] + pd.Timedelta(microseconds=300)
    out = frame.copy()
    out.insert(0, "sample_time", sample)
    out.index = pd.DatetimeIndex(host, name="host_time")
    session = write_session(data_dir, "dev1", out, batch_lines=2500)
    m = SessionManifest.load(session)
    m.columns = [c for c in m.columns if c != "sample_time"]
    m.ntp_synchronized = True
    m.clock = dataclasses.asdict(ClockQuality(
        rate_hz=1000.0021, nominal_rate_hz=1000.0, drift_ppm=2.1, delay_ms={"p50": 0.6, "p99": 15.8, "max": 40.1},
        residual_us={"p50": 60.0, "p99": 250.0, "max": 400.0}, reads=300, segments=1, ntp_at_start=True,
        ntp_at_end=True,
    ))
    m.save(session)
    return session


def test_loading_uses_sample_time_and_keeps_host_time_available(tmp_path):
    session = _jittery_session(tmp_path)
    frame = load(session)
    assert frame.index.name == "sample_time" and frame.index.is_monotonic_increasing
    assert np.all(np.diff(frame.index.asi8) == 1000)  # 1 kHz exactly: host jitter is gone
    assert list(frame.columns) == ["seq", "ch1", "ch2"]
    host = load(session, settings=AnalysisSettings(time_axis="host"))
    assert host.index.name == "host_time" and (host.index >= frame.index).all()
    assert (np.diff(host.index.asi8) == 0).mean() > 0.5  # many lines share one read's host time


def test_no_false_time_gaps_from_a_busy_host_and_real_gaps_found(tmp_path):
    frame = load(_jittery_session(tmp_path, gaps=[2000], pause_at=4000))
    report = gap_report(frame)
    assert report.seq is not None and report.seq["missing"].tolist() == [50]
    assert report.time["cause"].tolist() == ["missing", "pause"]
    assert report.time["position"].tolist() == [2000, 4000]  # the rows after the gaps
    assert report.time["seconds"].iloc[1] == pytest.approx(0.301)


def test_batches_without_sample_time_still_load_and_give_no_false_gaps(tmp_path):
    session = _jittery_session(tmp_path, gaps=[3000])
    for batch in sorted(session.glob("batch-*.csv")):  # rewrite as before the sample clock: no column
        lines = batch.read_bytes().split(b"\n")
        old = [b",".join(x for i, x in enumerate(line.split(b",")) if i != 1) for line in lines]
        batch.write_bytes(b"\n".join(old))
    frame = load(session)
    assert frame.index.name == "sample_time" and list(frame.columns) == ["seq", "ch1", "ch2"]
    assert (np.diff(frame.index.asi8) == 0).mean() > 0.5  # the fallback: host times
    report = gap_report(frame)
    assert report.missing == 50 and report.time.empty  # the counter gap is found; host-time jumps are not gaps


def test_summary_shows_time_quality_and_counts_what_it_cuts(tmp_path, capsys):
    session = _jittery_session(tmp_path, gaps=list(range(200, 5800, 400)))  # 14 counter gaps
    assert main(["summary", str(session), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "sequence gaps: 14 breaks, 700 samples missing" in out
    assert "time gaps: 14" in out and out.count("… and 4 more") == 2
    assert "1000.0021 Hz, drift +2.1 ppm; NTP: yes" in out and "p99 15.8" in out
