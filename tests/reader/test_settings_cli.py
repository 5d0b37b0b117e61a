"""Settings from env and flags, and the command line's errors and help."""

from __future__ import annotations

import os
import subprocess

import pytest

from reader.cli import parse_args
from reader.settings import SettingsError, build_settings
from tests.reader.conftest import READER


def settings(argv: list[str], env: dict[str, str]):
    return build_settings(parse_args(argv), env)


def test_env_gives_values_and_flags_override():
    env = {"SENSOR_PORT": "/dev/ttyUSB0", "SENSOR_DATA_DIR": "/data", "SENSOR_BATCH_LINES": "500",
           "SENSOR_BATCH_SECONDS": "2.5", "SENSOR_INGEST_TOKEN": "t", "SENSOR_SEQ": "yes"}
    s = settings(["--batch-lines", "7"], env)
    assert (s.port, str(s.data_dir), s.batch_lines, s.batch_seconds, s.seq) == ("/dev/ttyUSB0", "/data", 7, 2.5, True)
    assert s.record and s.stream


def test_modes():
    demo = settings(["--port", "p", "--demo", "--token", "t"], {})
    assert (demo.record, demo.stream, demo.data_dir) == (False, True, None)
    local = settings(["--port", "p", "--data-dir", "d", "--local"], {})
    assert (local.record, local.stream) == (True, False)


@pytest.mark.parametrize(
    "argv, env, message",
    [
        ([], {}, "no serial port"),
        (["--port", "p"], {"SENSOR_INGEST_TOKEN": "t"}, "no data directory"),
        (["--port", "p", "--data-dir", "d"], {}, "no ingest token"),
        (["--port", "p", "--local"], {"SENSOR_DATA_DIR": "d", "SENSOR_BATCH_LINES": "many"}, "SENSOR_BATCH_LINES"),
        (["--port", "p", "--local", "--data-dir", "d", "--batch-lines", "0"], {}, "batch lines"),
        (["--port", "p", "--local", "--data-dir", "d", "--delimiter", "."], {}, "delimiter"),
        (["--port", "p", "--local", "--data-dir", "d"], {"SENSOR_SEQ": "maybe"}, "SENSOR_SEQ"),
        (["--port", "p", "--data-dir", "d", "--token", "t", "--ws-url", "http://x"], {}, "ws://"),
    ],
)
def test_bad_settings_say_what_is_wrong(argv, env, message):
    with pytest.raises(SettingsError, match=message):
        settings(argv, env)


def test_cli_error_exit_code_and_message():
    env = {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}  # (the code under test, nothing else)
    out = subprocess.run([READER, "--port", "/dev/null"], capture_output=True, text=True, env=env, timeout=30,
                         check=False)
    assert out.returncode == 2
    assert "no data directory" in out.stderr and "Traceback" not in out.stderr


def test_help_lists_every_setting():
    out = subprocess.run([READER, "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0
    for name in ("SENSOR_BATCH_LINES", "SENSOR_BATCH_SECONDS", "SENSOR_WS_URL", "SENSOR_INGEST_TOKEN", "--demo", "--local"):
        assert name in out.stdout


@pytest.mark.parametrize("device_id", ["lab/monitor1", "/tmp/escape", "..", ".hidden", "a b"])
@pytest.mark.parametrize("via", ["flag", "env"])
def test_unsafe_device_ids_are_refused_with_one_line(tmp_path, device_id, via):
    """Issue #11.4: an id that would nest, escape or hide from the uploader: exit 2, one line, nothing written."""
    data = tmp_path / "data"
    args = [READER, "--port", str(tmp_path / "no-such-port"), "--data-dir", str(data), "--local"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}  # PYTHONPATH stays
    if via == "env":
        env["SENSOR_DEVICE_ID"] = device_id
    if via == "flag":
        args += ["--device-id", device_id]
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=15, check=False)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "device id" in out.stderr and "Traceback" not in out.stderr
    assert not data.exists() and not (tmp_path / "escape").exists()
