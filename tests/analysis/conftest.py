"""Fixtures of the analysis tests: synthetic sessions in the real format, and a real S3 server (rclone)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from analysis.settings import AnalysisSettings
from analysis.synthetic import synth_frame, write_session
from tests.fixtures.s3 import S3Server, running_s3

START = "2026-11-25T09:00:00Z"
RATE = 500.0
# Session A of device dev1: 10 s at 500 Hz, rows 3000..3049 dropped (a 50-sample seq gap and a 0.1 s time gap).
GAP_ROW, GAP_LEN = 3000, 50
FREQS = (3.0, 10.0, 40.0, 120.0)


@dataclasses.dataclass
class SynthData:
    """A data directory with known content."""

    data_dir: Path
    session_a: Path
    session_b: Path
    frame_a: pd.DataFrame
    frame_b: pd.DataFrame


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthData:
    """dev1 with two sessions (A with one gap, B a minute later) and dev2 with one session."""
    data = tmp_path_factory.mktemp("data")
    full = synth_frame(START, RATE, 10, 4, freqs=FREQS, seed=1)
    frame_a = full.drop(full.index[GAP_ROW : GAP_ROW + GAP_LEN])
    frame_b = synth_frame("2026-11-25T09:01:00Z", RATE, 5, 4, freqs=FREQS, seed=2)
    a = write_session(data, "dev1", frame_a, batch_lines=1000)
    b = write_session(data, "dev1", frame_b, batch_lines=1000)
    write_session(data, "dev2", synth_frame(START, 100, 2, 2), batch_lines=100)
    (data / ".status").mkdir()
    return SynthData(data, a, b, frame_a, frame_b)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3 server (rclone serve s3, from tests/fixtures/s3.py) shared by the analysis tests."""
    with running_s3(tmp_path_factory.mktemp("analysis-s3"), key_prefix="analysis") as server:
        yield server


def s3_settings(server: S3Server, **overrides: object) -> AnalysisSettings:
    """Analysis settings for ``server`` with explicit credentials and short timeouts."""
    values: dict[str, object] = {
        "endpoint_url": server.endpoint_url,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        "region": "us-east-1",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "retries": 2,
    }
    values.update(overrides)
    return AnalysisSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's credentials in the environment (boto3's standard chain), no endpoint variables."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "SENSOR_S3_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return s3


def write_device_digits(data_dir: Path, device: str, frame: pd.DataFrame, batch_lines: int) -> Path:
    """A session whose batches hold fixed four-decimal text, as a device prints it (``-0.1930``)."""
    from kernel.batch import TIME_COLUMN, TIME_FORMAT
    from kernel.layout import batch_filename

    session = write_session(data_dir, device, frame, batch_lines=batch_lines)
    for n, lo in enumerate(range(0, len(frame), batch_lines), start=1):
        text = frame.iloc[lo : lo + batch_lines].to_csv(
            float_format="%.4f", date_format=TIME_FORMAT, lineterminator="\n", index_label=TIME_COLUMN
        )
        (session / batch_filename(n)).write_text(text)
    return session


@pytest.fixture(scope="session")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dev3: 60 s at 500 Hz, 4 channels printed with four decimals, in six batches."""
    frame = synth_frame("2026-11-25T10:00:00Z", RATE, 60, 4, freqs=FREQS, seed=3)
    return write_device_digits(tmp_path_factory.mktemp("digits"), "dev3", frame, batch_lines=5000)
