"""Bad credentials and a missing bucket: one clear error, a slow retry, no crash loop, no secret in the logs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kernel.layout import is_touched
from kernel.status import read_statuses
from tests.fixtures.s3 import S3Server
from tests.uploader.daemon_helpers import start, stop, uploader_args, uploader_env, wait_for
from tests.uploader.sessions import T0, make_session


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-key", "no-credentials", "missing-bucket"])
def test_once_reports_one_clear_error(s3_server: S3Server, s3_bucket: str, tmp_path: Path, case: str) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=1, rows=10)
    env = uploader_env(s3_server, HOME=str(tmp_path))
    bucket = s3_bucket
    secret = s3_server.secret_key
    if case == "wrong-secret":
        secret = "wrong-" + s3_server.secret_key
        env["AWS_SECRET_ACCESS_KEY"] = secret
    elif case == "unknown-key":
        env["AWS_ACCESS_KEY_ID"] = "nosuchaccesskey0"
    elif case == "no-credentials":
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    else:
        bucket = "no-such-bucket"
    result = subprocess.run(
        uploader_args(s3_server, bucket, data, "--once"),
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, result.stderr
    expected = {
        "wrong-secret": "access refused (SignatureDoesNotMatch)",
        "unknown-key": "access refused (InvalidAccessKeyId)",
        "no-credentials": "no usable S3 credentials",
        "missing-bucket": "bucket 'no-such-bucket' does not exist",
    }[case]
    assert expected in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    assert secret not in result.stderr
    assert not is_touched(sdir) and not (sdir / ".upload").exists(), "nothing processed before S3 accepts us"
    assert read_statuses(data)["uploader"]["state"] == "error"


def test_wrong_credentials_slow_retry_without_crash_loop(
    s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    make_session(data, "dev1", T0, batches=1, rows=10)
    secret = "wrong-" + s3_server.secret_key
    env = uploader_env(s3_server, AWS_SECRET_ACCESS_KEY=secret)
    log = tmp_path / "log"
    proc = start(uploader_args(s3_server, s3_bucket, data, "--foreground", "--fatal-retry", "0.3"), env, log)
    try:
        wait_for(lambda: read_statuses(data).get("uploader", {}).get("failures", 0) >= 3, 30, "three retries")
        assert proc.poll() is None, "no crash"
        status = read_statuses(data)["uploader"]
        assert status["state"] == "error" and "access refused" in status["error"]
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert text.count("S3 refuses the upload") == 1, text
    assert secret not in text and s3_server.secret_key not in text


def test_missing_bucket_recovers_once_created(s3_server: S3Server, tmp_path: Path) -> None:
    data = tmp_path / "data"
    sdir = make_session(data, "dev1", T0, batches=2, rows=10)
    log = tmp_path / "log"
    proc = start(
        uploader_args(s3_server, "late-bucket", data, "--foreground", "--fatal-retry", "0.3"),
        uploader_env(s3_server),
        log,
    )
    try:
        wait_for(lambda: read_statuses(data).get("uploader", {}).get("failures", 0) >= 2, 30, "two retries")
        assert "does not exist" in read_statuses(data)["uploader"]["error"]
        s3_server.create_bucket("late-bucket")
        wait_for(lambda: is_touched(sdir), 60, "the upload once the bucket exists")
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert text.count("does not exist") == 1 and text.count("S3 reachable again") == 1, text
    assert len(s3_server.objects("late-bucket")) == 4  # 2 batches, the envelope, the manifest
