"""WebSettings from the environment: secret key rules, flags, clear errors; the command line's --help."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from web.config import WebSettings
from web.errors import ConfigError

from .conftest import VENV_BIN

KEY = "s" * 50


def test_defaults_are_production_safe() -> None:
    cfg = WebSettings.from_env({"SENSOR_WEB_SECRET_KEY": KEY})
    assert cfg.debug is False and cfg.dev is False and cfg.ephemeral_key is False
    assert cfg.bind == "127.0.0.1" and cfg.port == 8000
    assert cfg.allowed_hosts == ("localhost", "127.0.0.1", "[::1]")
    assert cfg.ingest_token is None and cfg.redis_url is None
    assert cfg.login_required is False and cfg.secure_cookies is False
    assert cfg.db_path == Path("/var/lib/sensor-box/.web/web.sqlite3")


def test_everything_from_the_environment(tmp_path: Path) -> None:
    cfg = WebSettings.from_env({
        "SENSOR_WEB_SECRET_KEY": KEY, "SENSOR_WEB_ALLOWED_HOSTS": "box.lab, 10.0.0.5", "SENSOR_WEB_BIND": "0.0.0.0",
        "SENSOR_WEB_PORT": "8080", "SENSOR_INGEST_TOKEN": "t0k", "SENSOR_DATA_DIR": str(tmp_path),
        "SENSOR_WEB_LOGIN_REQUIRED": "yes", "SENSOR_WEB_SECURE_COOKIES": "on",
        "SENSOR_WEB_REDIS_URL": "redis://127.0.0.1:6379/0", "STATE_DIRECTORY": "/var/lib/sensor-web",
        "SENSOR_WEB_CSRF_TRUSTED_ORIGINS": "https://box.lab"})
    assert cfg.allowed_hosts == ("box.lab", "10.0.0.5")
    assert (cfg.bind, cfg.port, cfg.ingest_token, cfg.data_dir) == ("0.0.0.0", 8080, "t0k", tmp_path)
    assert cfg.login_required and cfg.secure_cookies
    assert cfg.redis_url == "redis://127.0.0.1:6379/0"
    assert cfg.db_path == Path("/var/lib/sensor-web/web.sqlite3")
    assert cfg.csrf_trusted_origins == ("https://box.lab",)


def test_secret_key_is_required_outside_dev_and_debug() -> None:
    with pytest.raises(ConfigError, match="no secret key"):
        WebSettings.from_env({})
    dev = WebSettings.from_env({"SENSOR_WEB_DEV": "1"})
    debug = WebSettings.from_env({"SENSOR_WEB_DEBUG": "1"})
    assert dev.ephemeral_key and not dev.debug
    assert debug.ephemeral_key and debug.debug
    assert dev.secret_key != debug.secret_key and len(dev.secret_key) >= 50


def test_secret_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    assert WebSettings.from_env({"SENSOR_WEB_SECRET_KEY_FILE": str(path)}).secret_key == KEY
    with pytest.raises(ConfigError, match="cannot read"):
        WebSettings.from_env({"SENSOR_WEB_SECRET_KEY_FILE": str(tmp_path / "missing")})
    path.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        WebSettings.from_env({"SENSOR_WEB_SECRET_KEY_FILE": str(path)})
    with pytest.raises(ConfigError, match="not both"):
        WebSettings.from_env({"SENSOR_WEB_SECRET_KEY_FILE": str(path), "SENSOR_WEB_SECRET_KEY": KEY})


@pytest.mark.parametrize("env, message", [
    ({"SENSOR_WEB_SECRET_KEY": "short"}, "shorter than 32"),
    ({"SENSOR_WEB_SECRET_KEY": KEY, "SENSOR_WEB_PORT": "http"}, "SENSOR_WEB_PORT='http': expected an integer"),
    ({"SENSOR_WEB_SECRET_KEY": KEY, "SENSOR_WEB_PORT": "70000"}, "expected 1..65535"),
    ({"SENSOR_WEB_SECRET_KEY": KEY, "SENSOR_WEB_LOGIN_REQUIRED": "maybe"}, "SENSOR_WEB_LOGIN_REQUIRED='maybe'"),
    ({"SENSOR_WEB_SECRET_KEY": KEY, "SENSOR_LOG_LEVEL": "loud"}, "SENSOR_LOG_LEVEL"),
])
def test_invalid_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WebSettings.from_env(env)


def test_help_names_the_flags_and_commands() -> None:
    out = subprocess.run([str(VENV_BIN / "sensor-web"), "--help"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0
    for word in ("--bind", "--port", "createuser", "migrate", "SENSOR_INGEST_TOKEN", "/ws/ingest/"):
        assert word in out.stdout
