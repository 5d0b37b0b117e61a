"""The web app's one settings object, built from the environment once and validated with clear messages."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from web.errors import ConfigError

DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_DATA_DIR = "/var/lib/sensor-box"


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: expected {low}..{high}")
    return value


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name, "")
    items = tuple(x.strip() for x in raw.split(",") if x.strip())
    return items or default


def _secret_key(env: Mapping[str, str], ephemeral_ok: bool) -> tuple[str, bool]:
    """Return (key, ephemeral): from SENSOR_WEB_SECRET_KEY, a key file, or a random one in dev/debug only."""
    key = env.get("SENSOR_WEB_SECRET_KEY", "").strip()
    path = env.get("SENSOR_WEB_SECRET_KEY_FILE", "").strip()
    if key and path:
        raise ConfigError("set SENSOR_WEB_SECRET_KEY or SENSOR_WEB_SECRET_KEY_FILE, not both")
    if path:
        try:
            key = Path(path).read_text().strip()
        except OSError as err:
            raise ConfigError(f"SENSOR_WEB_SECRET_KEY_FILE={path}: cannot read it ({err.strerror})") from err
        if not key:
            raise ConfigError(f"SENSOR_WEB_SECRET_KEY_FILE={path}: the file is empty")
    if key:
        if len(key) < 32:
            raise ConfigError("the secret key is shorter than 32 characters; generate one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`")
        return key, False
    if ephemeral_ok:
        return secrets.token_urlsafe(50), True
    raise ConfigError(
        "no secret key: set SENSOR_WEB_SECRET_KEY_FILE (provisioning writes one) or SENSOR_WEB_SECRET_KEY; "
        "for a local demo set SENSOR_WEB_DEV=1 to use a random per-process key"
    )


@dataclasses.dataclass(frozen=True)
class WebSettings:
    """Everything sensor-web needs to know, read from the environment once."""

    secret_key: str
    ephemeral_key: bool
    debug: bool
    dev: bool
    allowed_hosts: tuple[str, ...]
    csrf_trusted_origins: tuple[str, ...]
    bind: str
    port: int
    ingest_token: str | None
    data_dir: Path
    db_path: Path
    login_required: bool
    secure_cookies: bool
    https: bool
    hsts_seconds: int
    redis_url: str | None
    viewer_window_kb: int
    viewer_queue_kb: int
    backfill_seconds: float
    backfill_kb: int
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebSettings:
        """Build and validate the settings from environment variables (see docs/web.md)."""
        env = os.environ if env is None else env
        debug = _flag(env, "SENSOR_WEB_DEBUG", False)
        dev = _flag(env, "SENSOR_WEB_DEV", False)
        key, ephemeral = _secret_key(env, ephemeral_ok=debug or dev)
        data_dir = Path(env.get("SENSOR_DATA_DIR", "").strip() or DEFAULT_DATA_DIR)
        state_dir = env.get("SENSOR_WEB_STATE_DIR", "").strip() or env.get("STATE_DIRECTORY", "").strip()
        db_default = (Path(state_dir.split(":")[0]) if state_dir else data_dir / ".web") / "web.sqlite3"
        db_path = Path(env.get("SENSOR_WEB_DB", "").strip() or db_default)
        token = env.get("SENSOR_INGEST_TOKEN", "").strip() or None
        log_level = env.get("SENSOR_LOG_LEVEL", "").strip().upper() or "INFO"
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"SENSOR_LOG_LEVEL={log_level!r}: expected DEBUG, INFO, WARNING or ERROR")
        backfill = _int(env, "SENSOR_WEB_BACKFILL_SECONDS", 30, 0, 600)
        https = _flag(env, "SENSOR_WEB_HTTPS", False)
        window_kb = _int(env, "SENSOR_WEB_VIEWER_WINDOW_KB", 1024, 16, 1 << 20)
        queue_kb = _int(env, "SENSOR_WEB_VIEWER_QUEUE_KB", 4096, 64, 1 << 20)
        backfill_kb = _int(env, "SENSOR_WEB_BACKFILL_KB", 2048, 0, 1 << 20)
        if backfill_kb > queue_kb // 2:
            raise ConfigError(f"SENSOR_WEB_BACKFILL_KB={backfill_kb}: at most half of SENSOR_WEB_VIEWER_QUEUE_KB "
                              f"({queue_kb // 2}), or a new viewer would start too far behind")
        return cls(
            secret_key=key,
            ephemeral_key=ephemeral,
            debug=debug,
            dev=dev,
            allowed_hosts=_list(env, "SENSOR_WEB_ALLOWED_HOSTS", DEFAULT_HOSTS),
            csrf_trusted_origins=_list(env, "SENSOR_WEB_CSRF_TRUSTED_ORIGINS", ()),
            bind=env.get("SENSOR_WEB_BIND", "").strip() or DEFAULT_BIND,
            port=_int(env, "SENSOR_WEB_PORT", DEFAULT_PORT, 1, 65535),
            ingest_token=token,
            data_dir=data_dir,
            db_path=db_path,
            login_required=_flag(env, "SENSOR_WEB_LOGIN_REQUIRED", False),
            secure_cookies=https or _flag(env, "SENSOR_WEB_SECURE_COOKIES", False),
            https=https,
            hsts_seconds=_int(env, "SENSOR_WEB_HSTS_SECONDS", 31_536_000 if https else 0, 0, 2 * 31_536_000),
            redis_url=env.get("SENSOR_WEB_REDIS_URL", "").strip() or None,
            viewer_window_kb=window_kb,
            viewer_queue_kb=queue_kb,
            backfill_seconds=float(backfill),
            backfill_kb=backfill_kb,
            log_level=log_level,
        )
