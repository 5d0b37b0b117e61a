"""Sessions without session.json (an upload cut short, a session still recording) load from their batches."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from analysis.loading import load
from analysis.sources import resolve
from kernel.layout import MANIFEST_NAME
from kernel.objects import envelope_key, manifest_key
from tests.analysis.conftest import SynthData, s3_settings
from tests.analysis.uploads import upload
from tests.fixtures.s3 import S3Server


def test_a_session_folder_without_its_manifest_loads_from_its_batches(
    synth: SynthData, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = tmp_path / "dev1" / synth.session_a.name
    shutil.copytree(synth.session_a, session)
    (session / MANIFEST_NAME).unlink()
    with caplog.at_level(logging.WARNING):
        frame = load(tmp_path)  # found through the data directory and the device folder too
    pd.testing.assert_frame_equal(frame, load(synth.session_a))
    assert "incomplete session" in caplog.text and "reading its 5 batch files" in caplog.text


def test_an_upload_cut_short_loads_from_the_listing(
    s3: S3Server, synth: SynthData, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Session A lost its manifest (and envelope) on S3, session B did not: the device prefix lists both."""
    bucket = s3.create_bucket("cut")
    url_a, _ = upload(
        s3, bucket, [synth.session_a, synth.session_b], tmp_path, prefix="p", box="box", form="parquet"
    )
    prefix_a = url_a.split("/", 3)[3]
    client = s3.client()
    for key in (manifest_key(prefix_a), envelope_key(prefix_a)):
        client.delete_object(Bucket=bucket, Key=key)
    settings = s3_settings(s3)
    pd.testing.assert_frame_equal(load(url_a, settings=settings), load(synth.session_a))
    device = url_a.rsplit("/", 1)[0]
    sessions = resolve(device, settings=settings).sessions
    assert [(s.manifest.session_id, s.complete) for s in sessions] == [
        (synth.session_a.name, False), (synth.session_b.name, True)
    ]
    pd.testing.assert_frame_equal(load(device, settings=settings), load(synth.session_a.parent))

    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    assert main(["summary", url_a, "--endpoint-url", s3.endpoint_url]) == 0
    out, err = capsys.readouterr()
    assert "rows: 4950" in out
    assert err.count("\n") == 1 and "incomplete session (no session.json: upload cut short" in err
