"""Gap report on frames with gaps at known places."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.gaps import gap_report, seq_gaps, time_gaps
from analysis.loading import load
from analysis.synthetic import synth_frame
from tests.analysis.conftest import GAP_LEN, GAP_ROW, SynthData


def test_gap_in_a_session_is_found_exactly(synth: SynthData) -> None:
    report = gap_report(load(synth.session_a))
    assert report.seq is not None
    assert report.seq[["position", "prev_seq", "seq", "missing", "kind"]].values.tolist() == [
        [GAP_ROW, GAP_ROW - 1, GAP_ROW + GAP_LEN, GAP_LEN, "gap"]
    ]
    assert report.missing == GAP_LEN
    assert report.time["position"].tolist() == [GAP_ROW]
    assert report.time["seconds"].iloc[0] == (GAP_LEN + 1) / 500
    assert "50 samples missing" in report.to_text()


def test_counter_wrap_reset_and_duplicates() -> None:
    f = synth_frame("2026-11-25T09:00:00Z", 100, 1, 1)
    f["seq"] = np.r_[np.arange(65530, 65536), np.arange(0, 50), np.arange(0, 44)]
    f.iloc[20, 0] = f.iloc[19, 0]  # a duplicate, then a step of 2 (one missing)
    wrapped = seq_gaps(f, modulus=65536)
    assert wrapped["kind"].tolist() == ["duplicate", "gap", "gap"]
    assert wrapped["position"].tolist() == [20, 21, 56]
    assert wrapped["missing"].tolist() == [0, 1, 65535 - 49]
    plain = seq_gaps(f)
    assert plain["kind"].tolist() == ["reset", "duplicate", "gap", "reset"]


def test_time_gaps_threshold() -> None:
    f = synth_frame("2026-11-25T09:00:00Z", 100, 2, 1)
    shifted = f.index.where(np.arange(len(f)) < 120, f.index + pd.Timedelta("0.5s"))
    f.index = pd.DatetimeIndex(shifted, name=f.index.name)
    gaps = time_gaps(f)
    assert gaps["position"].tolist() == [120] and gaps["seconds"].iloc[0] == 0.51
    assert time_gaps(f, threshold=1.0).empty
