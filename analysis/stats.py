"""Per-channel statistics and a one-screen summary of a loaded frame."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from analysis.transforms import channel_names, sample_rate


def channel_stats(frame: pd.DataFrame, channels: Iterable[str] | None = None) -> pd.DataFrame:
    """count, NaNs, mean, std, min, max, peak-to-peak and RMS of each channel (one row per channel)."""
    rows = {}
    for c in channel_names(frame, channels):
        x = frame[c].to_numpy(dtype="float64")
        finite = x[np.isfinite(x)]
        if finite.size == 0:
            rows[c] = {
                "count": 0,
                "nan": int(x.size),
                "mean": np.nan,
                "std": np.nan,
                "min": np.nan,
                "max": np.nan,
                "p2p": np.nan,
                "rms": np.nan,
            }
            continue
        lo, hi = float(finite.min()), float(finite.max())
        rows[c] = {
            "count": int(finite.size),
            "nan": int(x.size - finite.size),
            "mean": float(finite.mean()),
            "std": float(finite.std()),
            "min": lo,
            "max": hi,
            "p2p": hi - lo,
            "rms": float(np.sqrt(np.mean(finite * finite))),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def describe(frame: pd.DataFrame) -> dict[str, object]:
    """Span, duration, rows and inferred sample rate of a frame."""
    out: dict[str, object] = {"rows": len(frame), "columns": list(frame.columns)}
    if len(frame):
        out["start"] = frame.index[0].isoformat()
        out["end"] = frame.index[-1].isoformat()
        out["seconds"] = (frame.index[-1] - frame.index[0]).total_seconds()
    if len(frame) > 1:
        out["rate_hz"] = round(sample_rate(frame), 3)
    return out
