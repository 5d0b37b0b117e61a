"""The typed documents of the kernel read back exactly what they write, and refuse what they cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel.frames import SAMPLES, STATUS, parse_envelope, samples_message, status_message
from kernel.manifest import STATE_CLOSED, SessionManifest
from kernel.objects import BatchStats, ChannelStats, UploadedBatch, UploadedManifest
from kernel.status import (
    ReaderStatus,
    UploaderStatus,
    read_statuses,
    reader_statuses,
    uploader_status,
    write_status,
)
from kernel.upload_state import ProcessedBatch

STATS = BatchStats(3, "2026-11-25T09:00:00.000000Z", "2026-11-25T09:00:00.002000Z",
                   {"ch1": ChannelStats(-1.0, 1.0, 0.0)}, 0, 0, 10, 12)


def _session() -> SessionManifest:
    return SessionManifest("dev1", "20261125T090000Z", "/dev/x", 115200, ["seq", "ch1"],
                           "2026-11-25T09:00:00.000000Z", "test", state=STATE_CLOSED, batches=2)


def test_uploaded_manifest_round_trip() -> None:
    good = UploadedBatch("batch-000001.csv", "p/b/dev1/s/batch-000001.parquet", "parquet", "a" * 64, 90,
                         "b" * 64, 80, stats=STATS)
    bad = UploadedBatch("batch-000002.csv", "p/b/dev1/s/batch-000002.csv", "csv", "c" * 64, 9, "c" * 64, 9,
                        valid=False, error="invalid batch: bad header")
    doc = UploadedManifest(_session(), "box1", [good, bad])
    raw = json.loads(doc.to_json())
    assert raw["batch_count"] == 2 and raw["rows"] == 3 and raw["box_id"] == "box1"
    assert raw["batches"][1]["rows"] is None and "first_time" not in raw["batches"][1]
    back = UploadedManifest.from_json(doc.to_json())
    assert back == doc and back.session.batches == 2
    del raw["batches"][0]["key"]
    with pytest.raises(ValueError, match="bad batch entry"):
        UploadedManifest.from_json(json.dumps(raw))


def test_processed_batch_marker_round_trip(tmp_path: Path) -> None:
    info = ProcessedBatch("batch-000001.csv", 90, "a" * 64, "parquet", "/x.parquet", 80, "b" * 64, "md5==",
                          "application/vnd.apache.parquet", stats=STATS, seconds=1.5)
    path = tmp_path / "m.json"
    path.write_bytes(info.to_json())
    assert "seconds" not in json.loads(path.read_bytes())
    assert ProcessedBatch.load(path) == ProcessedBatch(**{**info.__dict__, "seconds": 0.0})
    path.write_bytes(b'{"name": "batch-000001.csv"}')
    assert ProcessedBatch.load(path) is None


def test_status_documents_are_read_by_device_and_tolerate_unknown_fields(tmp_path: Path) -> None:
    write_status(tmp_path, "reader-a", {**ReaderStatus(device="dev1", connected=True, time=5.0).to_dict(),
                                        "future": 1})
    write_status(tmp_path, "uploader", {"quota": {"used_bytes": 1, "total_bytes": 2, "alarm": True,
                                                  "message": "full"}, "pid": 7})
    files = read_statuses(tmp_path)
    assert reader_statuses(files) == {"dev1": ReaderStatus(device="dev1", connected=True, time=5.0)}
    up = uploader_status(files)
    assert isinstance(up, UploaderStatus) and up.quota is not None and up.quota.alarm and up.pid == 7


def test_stream_envelopes() -> None:
    samples = parse_envelope(samples_message("sim0", "s", 1, ["ch1"], b"1.0,2\n", 1, 1))
    assert (samples.type, samples.device, samples.status) == (SAMPLES, "sim0", None)
    status = parse_envelope(status_message(device="sim0", connected=True))
    assert status.type == STATUS and status.status == {"device": "sim0", "connected": True}
    for text, reason in (("[1]", "not a JSON stream message"), ('{"type": "x", "device": "d"}', "unknown type")):
        with pytest.raises(ValueError, match=reason):
            parse_envelope(text)
