"""Upload passes in-process against a real S3 server (rclone serve s3): exactly once, verified, touched."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kernel.batch import read_batch_frame
from kernel.layout import MARKERS_NAME, committed_batches, is_touched
from kernel.manifest import SessionManifest
from kernel.objects import manifest_key, markers_key
from kernel.status import read_statuses
from tests.fixtures.s3 import S3Server
from tests.uploader.sessions import T0, add_batch, close_session, make_session
from uploader.errors import S3Unavailable
from uploader.pipeline import Pipeline, cut
from uploader.service import Service
from uploader.settings import Settings, validate
from uploader.state import plan, scan
from uploader.tasks import ProcessChunk, build


def settings_for(server: S3Server, bucket: str, data_dir: Path, **kw: object) -> Settings:
    """Settings for a --once pass against the test server."""
    base = {
        "data_dir": data_dir,
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "box_id": "box1",
        "prefix": "lab",
        "once": True,
        "workers": 1,
        "interval": 0.2,
    }
    base.update(kw)
    return validate(Settings(**base))  # type: ignore[arg-type]


@pytest.fixture
def server_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Export the server's credentials for boto3's default chain."""
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)


def run_once(settings: Settings) -> Service:
    """One pass + cleanup, like ``sensor-uploader --once``; asserts exit code 0."""
    service = Service(settings, threading.Event())
    assert service.run() == 0
    return service


@pytest.mark.parametrize("workers", [2, 1], ids=["dask-threads", "dask-synchronous"])
def test_backlog_uploaded_exactly_once_with_matching_checksums(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None, workers: int
) -> None:
    data = tmp_path / "data"
    s1 = make_session(data, "devA", T0, batches=3, rows=300, channels=3)
    s2 = make_session(data, "devB", T0 + timedelta(hours=1), batches=2, rows=250, channels=2, seq=False)
    (s1 / "batch-000004.csv.part").write_bytes(b"host_time,seq,ch1\n2026-")  # a writer's temp file
    settings = settings_for(s3_server, s3_bucket, data, workers=workers, chunk=2)
    run_once(settings)

    objects = s3_server.objects(s3_bucket)
    expected = {f"lab/box1/devA/{s1.name}/batch-00000{i}.parquet" for i in (1, 2, 3)}
    expected |= {f"lab/box1/devB/{s2.name}/batch-00000{i}.parquet" for i in (1, 2)}
    expected |= {f"lab/box1/devA/{s1.name}/session.json", f"lab/box1/devB/{s2.name}/session.json"}
    expected |= {f"lab/box1/devA/{s1.name}/envelope.parquet", f"lab/box1/devB/{s2.name}/envelope.parquet"}
    assert set(objects) == expected
    client = s3_server.client()
    for sdir in (s1, s2):
        assert is_touched(sdir)
        doc = json.loads(objects[f"lab/box1/{sdir.parent.name}/{sdir.name}/session.json"].read_bytes())
        local = SessionManifest.load(sdir)
        assert doc["session_id"] == local.session_id and doc["state"] == "closed" and doc["box_id"] == "box1"
        assert [b["name"] for b in doc["batches"]] == [p.name for p in committed_batches(sdir)]
        for entry, batch in zip(doc["batches"], committed_batches(sdir), strict=True):
            raw = batch.read_bytes()
            obj = objects[entry["key"]].read_bytes()
            assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
            assert entry["object_sha256"] == hashlib.sha256(obj).hexdigest()
            head = client.head_object(Bucket=s3_bucket, Key=entry["key"])
            meta = {k.lower(): v for k, v in head["Metadata"].items()}
            assert meta["sha256"] == entry["object_sha256"]
            assert head["ContentLength"] == len(obj) and meta["source-sha256"] == entry["sha256"]
            table = pq.read_table(io.BytesIO(obj))
            assert str(table.schema.field("host_time").type) == "timestamp[us, tz=UTC]"
            got = table.to_pandas().set_index("host_time")
            want = read_batch_frame(batch)
            assert list(got.columns) == list(want.columns) and len(got) == entry["rows"] == len(want)
            assert (got.index == want.index).all()
            assert (got.to_numpy() == want.to_numpy()).all()
            if "seq" in want.columns:
                assert str(table.schema.field("seq").type) == "int64" and entry["seq_gaps"] == 0
            ch1 = want["ch1"]
            assert entry["channels"]["ch1"] == pytest.approx(
                {"min": ch1.min(), "max": ch1.max(), "mean": ch1.mean()}
            )
            assert entry["first_time"] == batch.read_text().splitlines()[1].split(",")[0]

    # A rerun uploads nothing: no object is rewritten and no new key appears.
    mtimes = {k: p.stat().st_mtime_ns for k, p in objects.items()}
    for sdir in (s1, s2):
        (sdir / ".touched").unlink()  # force the publish step to run again: its PUT must be skipped by HEAD
    service = run_once(settings)
    assert service.pipeline.uploaded == 0 and service.pipeline.skipped == 0
    after = s3_server.objects(s3_bucket)
    assert {k: p.stat().st_mtime_ns for k, p in after.items()} == mtimes
    assert all(is_touched(s) for s in (s1, s2))
    status = read_statuses(data)["uploader"]
    assert status["state"] == "idle" and status["backlog_batches"] == 0 and status["last_upload"] > 0


def test_touched_only_once_the_session_is_closed_and_uploaded(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None
) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=2, rows=100, closed=False)
    settings = settings_for(s3_server, s3_bucket, data)
    run_once(settings)
    keys = set(s3_server.objects(s3_bucket))
    assert {k.rsplit("/", 1)[1] for k in keys} == {"batch-000001.parquet", "batch-000002.parquet"}
    assert not is_touched(sdir), "an open session must not be touched"

    manifest = SessionManifest.load(sdir)
    add_batch(sdir, manifest, 3, T0 + timedelta(seconds=1), 100, 1000.0)
    close_session(sdir)
    run_once(settings)
    assert is_touched(sdir)
    doc = json.loads(s3_server.objects(s3_bucket)[f"lab/box1/dev1/{sdir.name}/session.json"].read_bytes())
    assert [b["name"] for b in doc["batches"]] == ["batch-000001.csv", "batch-000002.csv", "batch-000003.csv"]
    assert doc["rows"] == 300
    assert not list((sdir / ".upload").glob("*.parquet")), "staged objects are removed once verified"


@pytest.mark.parametrize("fmt", ["csv.gz", "csv"])
def test_csv_formats_store_the_original_bytes(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None, fmt: str
) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=2, rows=120)
    run_once(settings_for(s3_server, s3_bucket, data, upload_format=fmt, prefix=""))
    objects = s3_server.objects(s3_bucket)
    for batch in committed_batches(sdir):
        obj = objects[f"box1/dev1/{sdir.name}/{batch.name.removesuffix('.csv')}.{fmt}"].read_bytes()
        assert (gzip.decompress(obj) if fmt == "csv.gz" else obj) == batch.read_bytes()
    assert is_touched(sdir)


def test_invalid_batch_is_uploaded_raw_and_flagged(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None
) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=2, rows=50)
    bad = sdir / "batch-000002.csv"
    bad.write_bytes(bad.read_bytes() + b"2026-11-20T08:00:01.000000Z,77\n")  # a short row
    run_once(settings_for(s3_server, s3_bucket, data))
    objects = s3_server.objects(s3_bucket)
    assert objects[f"lab/box1/dev1/{sdir.name}/batch-000002.csv"].read_bytes() == bad.read_bytes()
    doc = json.loads(objects[f"lab/box1/dev1/{sdir.name}/session.json"].read_bytes())
    assert doc["batches"][1]["valid"] is False and "Expected 6 columns, got 2" in doc["batches"][1]["error"]
    assert doc["batches"][0]["valid"] is True and doc["batches"][0]["format"] == "parquet"


def test_corrupted_staged_object_is_refused_by_content_md5_and_redone(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None
) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=2, rows=80)
    settings = settings_for(s3_server, s3_bucket, data)
    assert build(ProcessChunk(batches=[str(b) for b in committed_batches(sdir)], fmt="parquet"))
    staged = sdir / ".upload" / "batch-000001.parquet"
    damaged = bytearray(staged.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size, different bytes: only a checksum can tell
    staged.write_bytes(bytes(damaged))

    assert Service(settings, threading.Event()).run() == 1
    key = f"lab/box1/dev1/{sdir.name}/batch-000001.parquet"
    assert key not in s3_server.objects(s3_bucket), "the server refused the damaged bytes (BadDigest)"
    assert not (sdir / ".upload" / "batch-000001.stats.json").exists() and not is_touched(sdir)

    run_once(settings)  # the next pass re-processes from the committed batch
    obj = s3_server.objects(s3_bucket)[key].read_bytes()
    got = pq.read_table(io.BytesIO(obj)).to_pandas().set_index("host_time")
    assert (got.to_numpy() == read_batch_frame(committed_batches(sdir)[0]).to_numpy()).all()
    assert is_touched(sdir)


def test_a_pass_keeps_at_most_two_chunks_in_flight(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None
) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=15, rows=60)
    pipeline = Pipeline(settings_for(s3_server, s3_bucket, data, chunk=3, concurrency=2))
    staged: list[int] = []
    pipeline.heartbeat = lambda: staged.append(
        len([f for f in (sdir / ".upload").glob("batch-*.parquet") if not f.name.endswith(".envelope.parquet")])
    )
    try:
        result = pipeline.run_pass(plan(scan(data), 100))
    finally:
        pipeline.close()
    assert result.ok and result.uploaded == 15 and is_touched(sdir)
    # Processed but not yet uploaded: never more than two chunks, however long the backlog.
    assert [len(c) for c in cut(committed_batches(sdir), 3)] == [1, 2, 3, 3, 3, 3]  # small first, then full
    assert len(staged) == 15 and max(staged) <= 2 * 3
    assert pipeline.run_pass(plan(scan(data), 100)).uploaded == 0, "nothing left: a rerun uploads nothing"


def test_session_markers_are_uploaded_before_the_manifest(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None
) -> None:
    data = tmp_path / "data"
    with_markers = make_session(data, "dev1", T0, batches=2, rows=50)
    without = make_session(data, "dev2", T0, batches=1, rows=50)
    events = b'{"t": "2026-11-20T08:00:00.050000Z", "label": "valve open"}\n'
    (with_markers / MARKERS_NAME).write_bytes(events)
    run_once(settings_for(s3_server, s3_bucket, data))
    objects = s3_server.objects(s3_bucket)
    key = markers_key(f"lab/box1/dev1/{with_markers.name}")
    assert objects[key].read_bytes() == events
    assert (
        objects[key].stat().st_mtime_ns
        <= objects[manifest_key(f"lab/box1/dev1/{with_markers.name}")].stat().st_mtime_ns
    )
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=key)
    assert head["ContentLength"] == len(events) and head["ETag"].strip('"') == hashlib.md5(events).hexdigest()
    assert not any(k.endswith(MARKERS_NAME) for k in objects if "/dev2/" in k)
    assert is_touched(with_markers) and is_touched(without)


def test_an_outage_ends_the_pass_early(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path, server_env: None
) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=40, rows=40)
    pipeline = Pipeline(settings_for(s3_server, s3_bucket, data, chunk=4, concurrency=2, max_attempts=1))
    s3_server.stop()
    try:
        result = pipeline.run_pass(plan(scan(data), 100))
    finally:
        pipeline.close()
        s3_server.start()
    assert not result.ok and any(isinstance(e, S3Unavailable) for e in result.errors)
    # The batches after the first failures are neither processed nor tried: the service backs off instead.
    assert len(list((sdir / ".upload").glob("*.stats.json"))) < 40
    assert sum(isinstance(e, S3Unavailable) for e in result.errors) < 40 and not is_touched(sdir)
