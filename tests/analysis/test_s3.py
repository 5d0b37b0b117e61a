"""Loading uploaded sessions from a real S3 server (rclone serve s3) in every uploaded format."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from analysis.errors import BadTimeRange, S3Unreachable, SourceNotFound
from analysis.loading import load, plan
from analysis.settings import AnalysisSettings
from tests.analysis.conftest import SynthData, s3_settings
from tests.analysis.uploads import upload
from tests.fixtures.s3 import S3Server, free_port


@pytest.fixture(scope="module")
def uploaded(s3: S3Server, synth: SynthData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Session A uploaded by the real uploader as csv.gz and csv (boxes box-csv.gz, box-csv), A and B as Parquet."""
    bucket = s3.create_bucket("lab")
    work = tmp_path_factory.mktemp("uploads")
    urls = {
        form: upload(s3, bucket, [synth.session_a], work, prefix="rec", box=f"box-{form}", form=form)[0]
        for form in ("csv.gz", "csv")
    }
    urls["parquet"], urls["parquet-b"] = upload(
        s3, bucket, [synth.session_a, synth.session_b], work, prefix="rec", box="box-parquet", form="parquet"
    )
    return urls


@pytest.mark.parametrize("form", ["parquet", "csv.gz", "csv"])
def test_every_uploaded_format_loads_like_the_local_session(
    s3: S3Server, synth: SynthData, uploaded: dict[str, str], form: str
) -> None:
    frame = load(uploaded[form], settings=s3_settings(s3))
    pd.testing.assert_frame_equal(frame, load(synth.session_a))
    assert frame.index.dtype == "datetime64[us, UTC]" and frame["seq"].dtype == "int64"


def test_device_prefix_loads_all_sessions_and_windows_prune(
    s3: S3Server, synth: SynthData, uploaded: dict[str, str]
) -> None:
    device_url = uploaded["parquet"].rsplit("/", 1)[0]
    settings = s3_settings(s3)
    frame = load(device_url, settings=settings)
    pd.testing.assert_frame_equal(frame, load(synth.session_a.parent))
    box = device_url.rsplit("/", 1)[0]
    window = {"start": "2026-11-25T09:00:02Z", "duration": "1s"}
    p = plan(box, device="dev1", settings=settings, **window)
    # batch times from the uploaded manifests prune to one batch of A; B is skipped by its batches' times
    assert [b.location.rsplit("/", 1)[1] for b in p.batches] == ["batch-000002.parquet"]
    pd.testing.assert_frame_equal(
        load(box, device="dev1", settings=settings, **window), load(synth.session_a, **window)
    )


def test_lazy_load_from_s3(s3: S3Server, synth: SynthData, uploaded: dict[str, str]) -> None:
    lazy = load(uploaded["csv.gz"], settings=s3_settings(s3), lazy=True)
    assert lazy.npartitions == 5 and lazy.known_divisions
    pd.testing.assert_frame_equal(lazy.compute(), load(synth.session_a))


def test_credentials_from_the_environment(s3_env: S3Server, uploaded: dict[str, str]) -> None:
    settings = AnalysisSettings(endpoint_url=s3_env.endpoint_url)
    assert len(load(uploaded["parquet"], settings=settings, channels=["ch1"])) == 4950


def test_s3_errors_are_clear(s3: S3Server, uploaded: dict[str, str]) -> None:
    settings = s3_settings(s3)
    with pytest.raises(SourceNotFound, match="no uploaded sessions"):
        load("s3://lab/rec/nothing-here", settings=settings)
    with pytest.raises(SourceNotFound, match="bucket does not exist"):
        load("s3://no-such-bucket/rec/x", settings=settings)
    with pytest.raises(S3Unreachable, match="refused"):
        load(uploaded["parquet"], settings=s3_settings(s3, secret_access_key="wrong"))
    with pytest.raises(BadTimeRange, match="outside the data"):
        load(uploaded["parquet"], settings=settings, start="1h")


def test_unreachable_endpoint_fails_fast() -> None:
    settings = AnalysisSettings(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="k",
        secret_access_key="s",
        connect_timeout=1,
        retries=2,
    )
    t0 = time.monotonic()
    with pytest.raises(S3Unreachable, match="cannot reach S3"):
        load("s3://lab/rec/box/dev/session", settings=settings)
    assert time.monotonic() - t0 < 10


def test_hung_server_times_out(s3: S3Server, uploaded: dict[str, str]) -> None:
    settings = s3_settings(s3, connect_timeout=1.0, read_timeout=1.0, retries=1)
    s3.pause()
    try:
        t0 = time.monotonic()
        with pytest.raises(S3Unreachable):
            load(uploaded["parquet"], settings=settings)
        assert time.monotonic() - t0 < 10
    finally:
        s3.resume()
