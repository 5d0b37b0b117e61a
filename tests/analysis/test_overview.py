"""Overviews from stored envelopes (session envelope on disk or S3, staged batch envelopes), else samples."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from analysis.envelope import Envelope
from analysis.loading import plan
from analysis.overview import overview_envelope
from kernel.layout import MANIFEST_NAME, committed_batches
from kernel.objects import envelope_key, parse_batch_object
from kernel.upload_state import staging_dir
from tests.analysis.conftest import s3_settings
from tests.analysis.uploads import upload
from tests.fixtures.s3 import S3Server
from uploader.convert import process_batch

WIDTH = 50  # 60 s in 50 pixel columns: 1.2 s each, coarse enough for one-second bins


def same_extremes(a: Envelope, b: Envelope) -> None:
    """Two envelopes of the same data: same samples in all, same extremes per channel."""
    assert a.counts.sum() == b.counts.sum() > 0
    np.testing.assert_array_equal(np.nanmin(a.mins, axis=0), np.nanmin(b.mins, axis=0))
    np.testing.assert_array_equal(np.nanmax(a.maxs, axis=0), np.nanmax(b.maxs, axis=0))


def test_a_recording_session_overviews_from_its_staged_batch_envelopes(digits: Path, tmp_path: Path) -> None:
    """Still recording (no session.json yet), batches processed by the uploader: no sample is read."""
    session = tmp_path / "dev3" / digits.name
    shutil.copytree(digits, session)
    (session / MANIFEST_NAME).unlink()
    for batch in committed_batches(session)[:-1]:  # the newest batch is not processed yet
        process_batch(str(batch), "parquet", str(staging_dir(session)))
    p = plan(session, need_spans=True)
    stored = overview_envelope(p, p_settings(), WIDTH)
    assert (stored.stored, stored.sampled) == (5, 1) and "1 of 6 batches" in (stored.note or "")
    samples = overview_envelope(p, p_settings(), WIDTH, from_samples=True)
    assert samples.sampled == 6 and samples.note is None
    same_extremes(stored.envelope, samples.envelope)


def test_without_any_envelope_the_cli_reads_the_samples_and_says_so(
    digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ov.png"
    assert main(["overview", str(digits), "--out", str(out), "--width", "400", "--height", "300"]) == 0
    assert "no stored envelope: reading the samples of 6 batches" in capsys.readouterr().err
    assert out.stat().st_size > 1000


def test_s3_overview_reads_the_session_envelope_then_falls_back_to_samples(
    s3: S3Server, digits: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.create_bucket("overview")
    (url,) = upload(s3, bucket, [digits], tmp_path, prefix="ov", box="box1", form="parquet")
    settings = s3_settings(s3)
    p = plan(url, settings=settings, need_spans=True)
    stored = overview_envelope(p, settings, WIDTH)
    assert (stored.stored, stored.sampled, stored.note) == (1, 0, None)
    same_extremes(stored.envelope, overview_envelope(p, settings, WIDTH, from_samples=True).envelope)

    client, prefix = s3.client(), url.split("/", 3)[3]
    envelope = client.get_object(Bucket=bucket, Key=envelope_key(prefix))["Body"].read()
    client.delete_object(Bucket=bucket, Key=envelope_key(prefix))
    fallback = overview_envelope(p, settings, WIDTH)
    assert fallback.sampled == 6 and "no stored envelope" in (fallback.note or "")
    same_extremes(stored.envelope, fallback.envelope)

    # With the envelope back and every batch object gone, the CLI still draws the day: it reads no sample.
    client.put_object(Bucket=bucket, Key=envelope_key(prefix), Body=envelope)
    for obj in client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")["Contents"]:
        if parse_batch_object(obj["Key"]) is not None:
            client.delete_object(Bucket=bucket, Key=obj["Key"])
    argv = [
        "overview", url, "--endpoint-url", s3.endpoint_url, "--out", str(tmp_path / "s3.png"),
        "--width", str(WIDTH), "--height", "200",
    ]
    with pytest.MonkeyPatch.context() as mp:
        for name, value in s3.env().items():
            mp.setenv(name, value)
        assert main(argv) == 0
        assert main([*argv, "--from-samples"]) == 2
    assert "not found on S3" in capsys.readouterr().err


def p_settings() -> object:
    """Default analysis settings (local sources)."""
    from analysis.settings import AnalysisSettings

    return AnalysisSettings()
