"""Uploads for the analysis tests, made by the real ``sensor-uploader --once`` (never an imitation of it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from kernel.layout import is_touched
from kernel.objects import object_key
from tests.fixtures.s3 import S3Server
from tests.uploader.daemon_helpers import uploader_env


def upload(
    server: S3Server, bucket: str, sessions: list[Path], work: Path, *, prefix: str, box: str, form: str
) -> list[str]:
    """Copy sessions into a fresh data directory under ``work``, upload it as ``box`` in ``form`` with
    ``sensor-uploader --once``, and return each session's ``s3://`` URL (in the order given)."""
    data = work / f"data-{prefix.replace('/', '_')}-{box}-{form}"
    for session in sessions:
        shutil.copytree(session, data / session.parent.name / session.name)
    args = [
        sys.executable, "-m", "uploader", "--once", "--data-dir", str(data), "--bucket", bucket,
        "--endpoint-url", server.endpoint_url, "--prefix", prefix, "--box-id", box, "--format", form,
        "--workers", "1", "--progress", "off", "--log-level", "WARNING",
    ]
    proc = subprocess.run(args, check=False, env=uploader_env(server), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    copies = [data / s.parent.name / s.name for s in sessions]
    assert all(is_touched(c) for c in copies), proc.stderr  # every session uploaded and published
    return [f"s3://{bucket}/{object_key(prefix, box, s.parent.name, s.name)}" for s in sessions]
