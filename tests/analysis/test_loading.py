"""Loading local sessions: same values as kernel.batch, typed channels, windows, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.errors import BadTimeRange, SourceNotFound, UnknownChannel
from analysis.loading import load, plan
from kernel.batch import SAMPLE_TIME_COLUMN, read_batch_frame
from kernel.layout import MANIFEST_NAME, committed_batches
from tests.analysis.conftest import GAP_LEN, GAP_ROW, RATE, SynthData


def test_session_load_matches_the_format_module_reader(synth: SynthData) -> None:
    frame = load(synth.session_a)
    expected = pd.concat([read_batch_frame(p) for p in committed_batches(synth.session_a)])
    pd.testing.assert_frame_equal(frame, expected)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index.name == SAMPLE_TIME_COLUMN  # the host time where a batch has no sample clock
    assert frame["seq"].dtype == "int64"
    assert all(frame[c].dtype == "float64" for c in ("ch1", "ch2", "ch3", "ch4"))
    pd.testing.assert_frame_equal(frame, synth.frame_a, check_freq=False)


def test_device_folder_and_data_dir_load_every_session_in_order(synth: SynthData) -> None:
    by_device = load(synth.session_a.parent)
    by_data_dir = load(synth.data_dir, device="dev1")
    assert len(by_device) == len(synth.frame_a) + len(synth.frame_b)
    pd.testing.assert_frame_equal(by_device, by_data_dir)
    assert by_device.index.is_monotonic_increasing
    assert by_device.index[-1] == synth.frame_b.index[-1]


def test_channel_selection_keeps_only_those_columns(synth: SynthData) -> None:
    frame = load(synth.session_a, channels=["ch2", "seq"])
    assert list(frame.columns) == ["ch2", "seq"]
    pd.testing.assert_series_equal(frame["ch2"], synth.frame_a["ch2"], check_freq=False)


def test_offset_window_selects_exact_rows(synth: SynthData) -> None:
    frame = load(synth.session_a, start="2s", duration="1.5s")
    t0 = synth.frame_a.index[0]
    expected = synth.frame_a[
        (synth.frame_a.index >= t0 + pd.Timedelta("2s")) & (synth.frame_a.index < t0 + pd.Timedelta("3.5s"))
    ]
    pd.testing.assert_frame_equal(frame, expected, check_freq=False)
    assert len(frame) == int(1.5 * RATE)


def test_absolute_window_across_sessions_prunes_batches(synth: SynthData) -> None:
    p = plan(synth.data_dir, device="dev1", start="2026-11-25T09:01:01Z", end="2026-11-25T09:01:02Z")
    # 1000-row batches at 500 Hz: only the first batch of session B (09:01:00 .. 09:01:01.998) is read.
    assert [b.location for b in p.batches] == [str(synth.session_b / "batch-000001.csv")]
    frame = load(synth.data_dir, device="dev1", start="2026-11-25T09:01:01Z", end="2026-11-25T09:01:02Z")
    assert len(frame) == 500 and frame.index[0] == pd.Timestamp("2026-11-25T09:01:01Z")
    assert frame.index[-1] == pd.Timestamp("2026-11-25T09:01:01.998Z")


def test_gap_rows_are_absent(synth: SynthData) -> None:
    frame = load(synth.session_a)
    assert frame["seq"].iloc[GAP_ROW] - frame["seq"].iloc[GAP_ROW - 1] == GAP_LEN + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "1h"}, "outside the data"),
        ({"start": "2026-11-24T00:00:00Z", "end": "2026-11-24T01:00:00Z"}, "outside the data"),
        ({"start": "5s", "end": "2s"}, "empty time range"),
        ({"start": "yesterday-ish"}, "cannot read"),
        ({"duration": "-3s"}, "positive"),
        ({"end": "5s", "duration": "1s"}, "either an end or a duration"),
    ],
)
def test_bad_time_ranges_are_refused(synth: SynthData, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(BadTimeRange, match=message):
        load(synth.session_a, **kwargs)


def test_unknown_channel_lists_the_recorded_ones(synth: SynthData) -> None:
    with pytest.raises(UnknownChannel, match=r"ch9.*recorded: seq, ch1, ch2, ch3, ch4"):
        load(synth.session_a, channels=["ch1", "ch9"])


def test_missing_sources_are_refused(synth: SynthData, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="no such session"):
        load(synth.data_dir / "dev1" / "20990101T000000Z")
    with pytest.raises(SourceNotFound, match="several devices"):
        load(synth.data_dir)
    with pytest.raises(SourceNotFound, match="no device 'dev9'"):
        load(synth.data_dir, device="dev9")
    with pytest.raises(SourceNotFound, match="no sessions here"):
        load(tmp_path)


def test_partial_batches_are_never_read(synth: SynthData, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "dev1" / synth.session_a.name
    shutil.copytree(synth.session_a, copy)
    (copy / "batch-000099.csv.part").write_bytes(b"host_time,seq\n2026-11-25T10:00:00.000000Z,9")
    assert len(load(copy)) == len(synth.frame_a)


@pytest.mark.parametrize("form", ["parquet", "csv.gz"])
def test_local_copy_of_an_uploaded_session(synth: SynthData, tmp_path: Path, form: str) -> None:
    import gzip

    from analysis.synthetic import parquet_bytes

    copy = tmp_path / "dev1" / synth.session_a.name
    copy.mkdir(parents=True)
    (copy / MANIFEST_NAME).write_bytes((synth.session_a / MANIFEST_NAME).read_bytes())
    for p in committed_batches(synth.session_a):
        stem = p.name.removesuffix(".csv")
        body = parquet_bytes(read_batch_frame(p)) if form == "parquet" else gzip.compress(p.read_bytes())
        (copy / f"{stem}.{form}").write_bytes(body)
    pd.testing.assert_frame_equal(load(copy), load(synth.session_a))


def test_settings_from_environment_and_flags() -> None:
    from analysis.settings import AnalysisSettings, SettingsError

    env = {
        "AWS_ENDPOINT_URL": "http://a:1",
        "SENSOR_S3_CONNECT_TIMEOUT": "1.5",
        "SENSOR_ANALYSIS_THREADS": "3",
    }
    s = AnalysisSettings.from_env(env)
    assert (s.endpoint_url, s.connect_timeout, s.threads) == ("http://a:1", 1.5, 3)
    assert (
        AnalysisSettings.from_env({**env, "SENSOR_S3_ENDPOINT_URL": "http://b:2"}).endpoint_url
        == "http://b:2"
    )
    assert AnalysisSettings.from_env(env, endpoint_url="https://c", threads=None).endpoint_url == "https://c"
    with pytest.raises(SettingsError, match="SENSOR_S3_RETRIES"):
        AnalysisSettings.from_env({"SENSOR_S3_RETRIES": "many"})
    with pytest.raises(SettingsError, match="http"):
        AnalysisSettings(endpoint_url="ftp://x")
    assert "secret" not in repr(AnalysisSettings(secret_access_key="secret"))


def test_windows_and_lazy_on_a_local_parquet_copy(synth: SynthData, tmp_path: Path) -> None:
    from analysis.synthetic import parquet_bytes

    copy = tmp_path / "dev1" / synth.session_a.name
    copy.mkdir(parents=True)
    (copy / MANIFEST_NAME).write_bytes((synth.session_a / MANIFEST_NAME).read_bytes())
    for p in committed_batches(synth.session_a):
        (copy / p.name.replace(".csv", ".parquet")).write_bytes(parquet_bytes(read_batch_frame(p)))
    p = plan(copy, start="2.5s", duration="1s")
    assert [b.location.rsplit("/", 1)[1] for b in p.batches] == ["batch-000002.parquet"]
    pd.testing.assert_frame_equal(
        load(copy, start="2.5s", duration="1s"), load(synth.session_a, start="2.5s", duration="1s")
    )
    lazy = load(copy, lazy=True)
    assert lazy.known_divisions and lazy.npartitions == 5
