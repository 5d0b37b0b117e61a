"""A session's event markers go up with it: markers.jsonl uploaded (byte for byte) before the manifest."""

from __future__ import annotations

from pathlib import Path

from kernel.layout import MARKERS_NAME, is_touched
from kernel.markers import SOURCE_API, append_marker, new_marker
from tests.fixtures.s3 import S3Server
from tests.uploader.sessions import T0, make_session
from tests.uploader.test_pipeline import run_once, server_env, settings_for

__all__ = ["server_env"]  # the fixture, used by name


def test_markers_file_is_uploaded_with_the_session(s3_server: S3Server, s3_bucket: str, tmp_path: Path,
                                                   server_env: None) -> None:
    data = tmp_path / "data"
    with_markers = make_session(data, "dev1", T0, batches=1, rows=50)
    append_marker(with_markers, new_marker("stimulus on", SOURCE_API))
    without = make_session(data, "dev2", T0, batches=1, rows=50)
    run_once(settings_for(s3_server, s3_bucket, data))
    objects = s3_server.objects(s3_bucket)
    key = f"lab/box1/dev1/{with_markers.name}/{MARKERS_NAME}"
    assert objects[key].read_bytes() == (with_markers / MARKERS_NAME).read_bytes()
    assert not any(k.startswith(f"lab/box1/dev2/{without.name}/") and k.endswith(MARKERS_NAME) for k in objects)
    assert is_touched(with_markers) and is_touched(without)
