"""Gap report: where the device counter skipped (lost lines) and where the device paused (no data)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.transforms import sample_rate, typical_step
from kernel.batch import SEQ_COLUMN


def seq_gaps(frame: pd.DataFrame, column: str = SEQ_COLUMN, modulus: int | None = None) -> pd.DataFrame:
    """Every break in the sequence counter.

    One row per break: ``position`` (row number of the first sample after it), ``time`` (its time),
    ``prev_seq``, ``seq``, ``missing`` (samples lost) and ``kind`` ("gap"; "reset" when the counter went
    backwards without a ``modulus`` to wrap at; "duplicate" for a repeated value).
    """
    if column not in frame.columns:
        raise AnalysisError(f"no {column!r} counter column (record with --seq to get one)")
    seq = frame[column].to_numpy(dtype="int64")
    step = np.diff(seq)
    if modulus:
        step = np.mod(step, modulus)
    breaks = np.flatnonzero(step != 1)
    missing = step[breaks] - 1
    kind = np.where(step[breaks] > 1, "gap", np.where(step[breaks] == 0, "duplicate", "reset"))
    missing = np.where(kind == "gap", missing, 0)
    pos = breaks + 1
    return pd.DataFrame(
        {
            "position": pos.astype("int64"),
            "time": frame.index[pos] if len(pos) else pd.DatetimeIndex([], tz="UTC"),
            "prev_seq": seq[breaks],
            "seq": seq[pos],
            "missing": missing.astype("int64"),
            "kind": kind.astype(object),
        }
    )


def host_stamped(index: pd.DatetimeIndex) -> bool:
    """True when times repeat within reads (one host time per bulk read): data without a sample clock."""
    steps = np.diff(index.as_unit("ns").asi8)
    return bool(steps.size) and float(np.mean(steps == 0)) > 0.1


def time_gaps(frame: pd.DataFrame, threshold: float | pd.Timedelta | None = None) -> pd.DataFrame:
    """Every stretch without samples longer than ``threshold`` (seconds), taken from the counter and the time.

    A stretch counts only when samples are really missing (the counter skipped: ``cause`` "missing") or the
    device paused (the counter went on but the sample clock jumped: "pause"); a late read does not, since
    the sample clock dates each sample from the counter. Without a counter every jump counts ("pause").
    Data stamped with host times only (batches from before the sample clock) with a counter: only counter
    skips count, as host times jump whenever the host was busy. The default threshold is 5 sample periods.

    One row per gap: ``position`` (row after it), ``start`` (last time before), ``end`` (first time after),
    ``seconds`` (its length) and ``cause``.
    """
    if len(frame) < 2:
        return pd.DataFrame({"position": [], "start": [], "end": [], "seconds": [], "cause": []})
    host = host_stamped(frame.index)
    if threshold is None:
        limit_ns = 5e9 * max(1.0 / sample_rate(frame), typical_step(frame) if host else 0.0)
    elif isinstance(threshold, pd.Timedelta):
        limit_ns = threshold.value
    else:
        limit_ns = float(threshold) * 1e9
    t = frame.index.as_unit("ns").asi8
    step = np.diff(t)
    if SEQ_COLUMN in frame.columns:
        skipped = np.diff(frame[SEQ_COLUMN].to_numpy(dtype="int64")) > 1
        late = step > limit_ns
        idx = np.flatnonzero(late & skipped if host else late)
        cause = np.where(skipped[idx], "missing", "pause")
    else:
        idx = np.flatnonzero(step > limit_ns)
        cause = np.full(idx.size, "pause")
    return pd.DataFrame(
        {
            "position": (idx + 1).astype("int64"),
            "start": frame.index[idx],
            "end": frame.index[idx + 1],
            "seconds": step[idx] / 1e9,
            "cause": cause.astype(object),
        }
    )


@dataclasses.dataclass
class GapReport:
    """Both kinds of gap for one frame, with totals."""

    seq: pd.DataFrame | None
    time: pd.DataFrame
    rows: int

    @property
    def missing(self) -> int:
        """Samples lost according to the counter (0 without a counter)."""
        return 0 if self.seq is None else int(self.seq["missing"].sum())

    def to_text(self, limit: int = 20) -> str:
        """Human-readable summary, listing at most ``limit`` gaps of each kind (then how many more)."""
        lines = [f"rows: {self.rows}"]
        if self.seq is None:
            lines.append("sequence gaps: no seq column")
        else:
            lines.append(f"sequence gaps: {len(self.seq)} breaks, {self.missing} samples missing")
            for r in self.seq.head(limit).itertuples():
                lines.append(
                    f"  row {r.position} at {r.time.isoformat()}: {r.kind} {r.prev_seq} -> {r.seq}"
                    f" ({r.missing} missing)"
                )
            lines += _more(len(self.seq), limit)
        lines.append(f"time gaps: {len(self.time)}")
        for r in self.time.head(limit).itertuples():
            lines.append(
                f"  row {r.position}: {r.start.isoformat()} -> {r.end.isoformat()} ({r.seconds:.6f} s, {r.cause})"
            )
        lines += _more(len(self.time), limit)
        return "\n".join(lines)


def _more(total: int, limit: int) -> list[str]:
    """The line closing a list cut at ``limit`` entries."""
    return [f"  … and {total - limit} more"] if total > limit else []


def gap_report(frame: pd.DataFrame, threshold: float | None = None, modulus: int | None = None) -> GapReport:
    """Sequence-counter gaps (when the frame has ``seq``) and time gaps (missing samples or a device pause)
    above ``threshold`` seconds."""
    seq = seq_gaps(frame, modulus=modulus) if SEQ_COLUMN in frame.columns else None
    return GapReport(seq, time_gaps(frame, threshold), len(frame))
