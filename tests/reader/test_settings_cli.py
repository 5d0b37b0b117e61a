"""Settings from env and flags, and the command line's errors and help."""

from __future__ import annotations

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
    out = subprocess.run([READER, "--port", "/dev/null"], capture_output=True, text=True, env={}, timeout=30, check=False)
    assert out.returncode == 2
    assert "no data directory" in out.stderr and "Traceback" not in out.stderr


def test_help_lists_every_setting():
    out = subprocess.run([READER, "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0
    for name in ("SENSOR_BATCH_LINES", "SENSOR_BATCH_SECONDS", "SENSOR_WS_URL", "SENSOR_INGEST_TOKEN", "--demo", "--local"):
        assert name in out.stdout
