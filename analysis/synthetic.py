"""Synthetic sessions in the recorded format (for examples, tests and benchmarks), written via the kernel."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from analysis.export import frame_to_batch_csv, frame_to_table
from kernel.atomic import write_atomic
from kernel.batch import SAMPLE_TIME_COLUMN, SEQ_COLUMN, format_time
from kernel.layout import batch_filename, new_session_id
from kernel.manifest import END_STOPPED, STATE_CLOSED, STATE_OPEN, SessionManifest


def synth_frame(
    start: datetime | str,
    rate: float,
    seconds: float,
    channels: int = 8,
    *,
    seq: bool = True,
    freqs: Sequence[float] | None = None,
    noise: float = 0.05,
    seed: int = 0,
    seq_start: int = 0,
    decimals: int = 4,
) -> pd.DataFrame:
    """Sine channels ch1..chN (channel k at ``freqs[k]`` Hz, default k Hz) sampled at ``rate`` from ``start``."""
    n = round(rate * seconds)
    t0 = pd.Timestamp(start)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    offsets_us = np.round(np.arange(n) * (1e6 / rate)).astype("int64")
    index = t0.as_unit("us") + pd.to_timedelta(offsets_us, unit="us")
    t = offsets_us / 1e6
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    if seq:
        data[SEQ_COLUMN] = np.arange(seq_start, seq_start + n, dtype="int64")
    for k in range(channels):
        f = freqs[k] if freqs is not None else float(k + 1)
        values = np.sin(2 * np.pi * f * t)
        if noise:
            values += noise * rng.standard_normal(n)
        data[f"ch{k + 1}"] = np.round(values, decimals)
    return pd.DataFrame(data, index=pd.DatetimeIndex(index, name=SAMPLE_TIME_COLUMN))


def batch_csv_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as the bytes of a batch file: header ``host_time,<columns>``, ISO UTC times with ``Z``."""
    return frame_to_batch_csv(frame)


def write_session(
    data_dir: Path,
    device: str,
    frame: pd.DataFrame,
    batch_lines: int = 60000,
    session_id: str | None = None,
    closed: bool = True,
) -> Path:
    """Write ``frame`` as a recorded session (committed batches + session.json); returns its folder."""
    device_dir = Path(data_dir) / device
    device_dir.mkdir(parents=True, exist_ok=True)
    started = frame.index[0].to_pydatetime().astimezone(UTC)
    sid = session_id or new_session_id(started, device_dir)
    session_dir = device_dir / sid
    session_dir.mkdir()
    n_batches = 0
    for n_batches, lo in enumerate(range(0, len(frame), batch_lines), start=1):
        data = batch_csv_bytes(frame.iloc[lo : lo + batch_lines])
        write_atomic(session_dir / batch_filename(n_batches), data, durable=False)
    manifest = SessionManifest(
        device_id=device,
        session_id=sid,
        port=f"/dev/{device}",
        baudrate=115200,
        columns=list(frame.columns),
        started_at=format_time(started),
        software_version="synthetic",
        lines=len(frame),
        batches=n_batches,
        state=STATE_CLOSED if closed else STATE_OPEN,
        end_reason=END_STOPPED if closed else None,
        ended_at=format_time(frame.index[-1].to_pydatetime()) if closed else None,
    )
    manifest.save(session_dir)
    return session_dir


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as the bytes of an uploaded Parquet batch (zstd)."""
    buf = io.BytesIO()
    pq.write_table(frame_to_table(frame), buf, compression="zstd")
    return buf.getvalue()


def utc(text: str) -> datetime:
    """Parse an ISO time as an aware UTC datetime (naive means UTC)."""
    ts = pd.Timestamp(text)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).to_pydatetime()
