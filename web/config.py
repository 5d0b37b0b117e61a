"""The web app's settings: its field table and the one frozen object built from it at the entry point.

`sensor-web` builds the object from its flags and environment and installs it (`install`) before Django
starts; Django's settings module (`web.settings`) then takes the installed one, or builds it from the
environment it is given when Django is started another way (tests, `daphne web.asgi:application`).
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

from kernel import settings as ks
from kernel.layout import STATUS_DIRNAME, safe_id
from kernel.settings import Field
from web.errors import ConfigError

DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "[::1]")
DEFAULT_DATA_DIR = "/var/lib/sensor-box"
YEAR = 31_536_000


def _kb(low: int) -> ks.Check:
    return ks.between(low, 1 << 20)


FIELDS = (
    Field("secret_key_file", "SENSOR_WEB_SECRET_KEY_FILE", parse=ks.stripped, default=None,
          help="file holding Django's secret key (provisioning generates it; ≥ 32 characters)"),
    Field("secret_key", "SENSOR_WEB_SECRET_KEY", parse=ks.stripped, default=None,
          help="the key itself (instead of the file; not both)"),
    Field("dev", "SENSOR_WEB_DEV", parse=ks.boolean, default=False,
          help="local demo: a random per-process key is allowed when none is set (DEBUG stays off)"),
    Field("debug", "SENSOR_WEB_DEBUG", parse=ks.boolean, default=False,
          help="Django DEBUG (development only: debug pages); also allows the random key"),
    Field("allowed_hosts", "SENSOR_WEB_ALLOWED_HOSTS", parse=ks.words, default=DEFAULT_HOSTS,
          help="comma-separated host names/addresses browsers use to reach the box; viewer websockets must "
          "come from one of these origins"),
    Field("csrf_trusted_origins", "SENSOR_WEB_CSRF_TRUSTED_ORIGINS", parse=ks.words, default=(),
          shown_default="—", help="comma-separated origins (`https://box.lab`) when behind a TLS proxy"),
    Field("bind", "SENSOR_WEB_BIND", "--bind", ks.stripped, default=DEFAULT_BIND, metavar="ADDR",
          help="listen address (`0.0.0.0` for the lab network)"),
    Field("port", "SENSOR_WEB_PORT", "--port", ks.integer, default=DEFAULT_PORT, metavar="N",
          check=ks.between(1, 65535), help="TCP port"),
    Field("ingest_token", "SENSOR_INGEST_TOKEN", parse=ks.stripped, default=None,
          help="the reader's bearer token; unset = every ingest connection is refused (logged)"),
    Field("metrics_token", "SENSOR_WEB_METRICS_TOKEN", parse=ks.stripped, default=None,
          help="bearer token Prometheus presents to scrape `/metrics` when login is required (Prometheus' "
          "`authorization:` setting); unset = only logged-in sessions may scrape then"),
    Field("box_id", "SENSOR_BOX_ID", parse=ks.stripped, default=None, shown_default="hostname",
          help="the box's name (made path-safe, as in the uploader's S3 keys): the label `box` on every "
          "metric"),
    Field("api_token", "SENSOR_WEB_API_TOKEN", parse=ks.stripped, default=None,
          help="bearer token for scripts posting event markers to `/api/markers`; unset = only logged-in "
          "dashboard users (or anyone on an open display) can place markers"),
    Field("data_dir", "SENSOR_DATA_DIR", parse=ks.path, default=Path(DEFAULT_DATA_DIR),
          help=f"data directory: `{STATUS_DIRNAME}/*.json` health files, the disk-use figure, and the recording "
          "sessions' event markers (written)"),
    Field("login_required", "SENSOR_WEB_LOGIN_REQUIRED", parse=ks.boolean, default=False,
          help="viewers must log in (Django auth) for `/`, `/api/status`, `/api/markers` (scripts: the API token), "
          "`/ws/live/` and `/metrics` (or its token); provisioning turns "
          "it on, an open lab display or the demo leaves it off. `/admin/` always needs a staff login"),
    Field("secure_cookies", "SENSOR_WEB_SECURE_COOKIES", parse=ks.boolean, default=False,
          help="`Secure` flag on session/CSRF cookies (turn on behind HTTPS)"),
    Field("https", "SENSOR_WEB_HTTPS", parse=ks.boolean, default=False,
          help="served behind a TLS front ([see below](#https-on-the-lab-network-a-tls-front)): trusts its `X-Forwarded-Proto: https`, redirects plain HTTP, sends "
          "HSTS, Secure cookies"),
    Field("hsts_seconds", "SENSOR_WEB_HSTS_SECONDS", parse=ks.integer, default=None, check=ks.between(0, 2 * YEAR),
          shown_default=f"`{YEAR}` with `SENSOR_WEB_HTTPS`, else `0`",
          help="HSTS max-age (with includeSubDomains and preload); `0` = no HSTS"),
    Field("db", "SENSOR_WEB_DB", parse=ks.path, default=None,
          shown_default="`$SENSOR_WEB_STATE_DIR/web.sqlite3`, else `$STATE_DIRECTORY/web.sqlite3`, else "
          "`<data dir>/.web/web.sqlite3`", help="the SQLite database (users, sessions)"),
    Field("state_dir", "SENSOR_WEB_STATE_DIR", parse=ks.stripped, default=None, also=("STATE_DIRECTORY",),
          help="folder for the database (systemd's `StateDirectory=` sets `STATE_DIRECTORY`)"),
    Field("redis_url", "SENSOR_WEB_REDIS_URL", parse=ks.stripped, default=None,
          help="use channels_redis (`pip install 'sensor-box[redis]'`) and fan out through a Redis group, for "
          "several processes; default is in-process"),
    Field("viewer_window_kb", "SENSOR_WEB_VIEWER_WINDOW_KB", parse=ks.integer, default=1024, check=_kb(16),
          help="bytes sent to a viewer and not yet acknowledged by it (what Daphne's socket buffers may hold "
          "per viewer)"),
    Field("viewer_queue_kb", "SENSOR_WEB_VIEWER_QUEUE_KB", parse=ks.integer, default=4096, check=_kb(64),
          help="bytes waiting for a viewer behind that window; a viewer that would exceed it is too far "
          "behind and is dropped"),
    Field("backfill_seconds", "SENSOR_WEB_BACKFILL_SECONDS", parse=ks.integer, default=30,
          check=ks.between(0, 600), help="seconds of frames kept per device and sent to a new viewer at once…"),
    Field("backfill_kb", "SENSOR_WEB_BACKFILL_KB", parse=ks.integer, default=2048, check=_kb(0),
          help="…but at most this many bytes per device (and half the viewer queue in all)"),
    Field("log_level", "SENSOR_LOG_LEVEL", "--log-level", ks.log_level, default="INFO", metavar="LEVEL",
          help="log level (stderr → journald)"),
)

TABLE = ks.Table("web", FIELDS, error=ConfigError)

_installed: WebSettings | None = None


def _secret_key(v: dict[str, object], ephemeral_ok: bool) -> tuple[str, bool]:
    """Return (key, ephemeral): from SENSOR_WEB_SECRET_KEY, a key file, or a random one in dev/debug only."""
    key, path = v["secret_key"], v["secret_key_file"]
    if key and path:
        raise ConfigError("set SENSOR_WEB_SECRET_KEY or SENSOR_WEB_SECRET_KEY_FILE, not both")
    if path:
        try:
            key = Path(str(path)).read_text().strip()
        except OSError as err:
            raise ConfigError(f"SENSOR_WEB_SECRET_KEY_FILE={path}: cannot read it ({err.strerror})") from err
        if not key:
            raise ConfigError(f"SENSOR_WEB_SECRET_KEY_FILE={path}: the file is empty")
    if key:
        if len(str(key)) < 32:
            raise ConfigError("the secret key is shorter than 32 characters; generate one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`")
        return str(key), False
    if ephemeral_ok:
        return secrets.token_urlsafe(50), True
    raise ConfigError(
        "no secret key: set SENSOR_WEB_SECRET_KEY_FILE (provisioning writes one) or SENSOR_WEB_SECRET_KEY; "
        "for a local demo set SENSOR_WEB_DEV=1 to use a random per-process key"
    )


@dataclasses.dataclass(frozen=True)
class WebSettings:
    """Everything sensor-web needs to know, read once at the edge."""

    secret_key: str
    ephemeral_key: bool
    debug: bool
    dev: bool
    allowed_hosts: tuple[str, ...]
    csrf_trusted_origins: tuple[str, ...]
    bind: str
    port: int
    ingest_token: str | None
    metrics_token: str | None
    box_id: str
    api_token: str | None
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
    def from_env(cls, env: Mapping[str, str], args: argparse.Namespace | None = None) -> WebSettings:
        """Build and validate the settings from the environment and (overriding it) the command line."""
        v = TABLE.read(args, env, fill=True)
        TABLE.validate(SimpleNamespace(**v))
        key, ephemeral = _secret_key(v, ephemeral_ok=bool(v["debug"] or v["dev"]))
        data_dir = Path(v["data_dir"])
        state_dir = v["state_dir"]
        db_default = (Path(str(state_dir).split(":")[0]) if state_dir else data_dir / ".web") / "web.sqlite3"
        https = bool(v["https"])
        if v["backfill_kb"] > v["viewer_queue_kb"] // 2:
            raise ConfigError(f"SENSOR_WEB_BACKFILL_KB={v['backfill_kb']}: at most half of "
                              f"SENSOR_WEB_VIEWER_QUEUE_KB ({v['viewer_queue_kb'] // 2}), or a new viewer would "
                              "start too far behind")
        hsts = v["hsts_seconds"]
        db_path = Path(v["db"] or db_default)
        problem = ks.writable_dir(db_path.parent)
        if problem:
            raise ConfigError(f"SENSOR_WEB_DB / SENSOR_WEB_STATE_DIR: {problem}")
        return cls(
            secret_key=key,
            ephemeral_key=ephemeral,
            debug=v["debug"],
            dev=v["dev"],
            allowed_hosts=v["allowed_hosts"] or DEFAULT_HOSTS,
            csrf_trusted_origins=v["csrf_trusted_origins"],
            bind=v["bind"] or DEFAULT_BIND,
            port=v["port"],
            ingest_token=v["ingest_token"] or None,
            metrics_token=v["metrics_token"] or None,
            box_id=safe_id(v["box_id"] or socket.gethostname()),
            api_token=v["api_token"] or None,
            data_dir=data_dir,
            db_path=db_path,
            login_required=v["login_required"],
            secure_cookies=https or v["secure_cookies"],
            https=https,
            hsts_seconds=(YEAR if https else 0) if hsts is None else hsts,
            redis_url=v["redis_url"] or None,
            viewer_window_kb=v["viewer_window_kb"],
            viewer_queue_kb=v["viewer_queue_kb"],
            backfill_seconds=float(v["backfill_seconds"]),
            backfill_kb=v["backfill_kb"],
            log_level=v["log_level"],
        )


def install(cfg: WebSettings) -> None:
    """Make `cfg` the settings Django's settings module uses (the entry point calls this before django.setup)."""
    global _installed
    _installed = cfg


def installed() -> WebSettings | None:
    """The settings the entry point installed, if any."""
    return _installed
