"""The uploader's settings: its field table and the one frozen object built from it at the entry point."""

from __future__ import annotations

import argparse
import dataclasses
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kernel import settings as ks
from kernel.layout import UPLOADER_LOG_NAME, UPLOADER_PID_NAME, safe_id, uploader_pid_path
from kernel.objects import CSV, CSV_GZ, FORMATS, PARQUET
from kernel.s3 import CHECKSUM_MODES
from kernel.settings import Field
from uploader.errors import SettingsError

PROGRESS_MODES = ("auto", "on", "off")
parse_size = ks.size


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the uploader needs; `TABLE` below names each field's flag and variable."""

    data_dir: Path
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    box_id: str = "box"
    upload_format: str = PARQUET
    interval: float = 10.0
    watch: bool = True
    backoff_max: float = 300.0
    fatal_retry: float = 300.0
    concurrency: int = 4
    workers: int = 2
    chunk: int = 8
    max_batches: int = 512
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    checksum_mode: str = "when_required"
    quota_bytes: int | None = None
    quota_high: float = 90.0
    quota_low: float = 80.0
    evict_unuploaded: bool = False
    pidfile: Path | None = None
    log_file: Path | None = None
    log_level: str = "INFO"
    progress: str = "auto"
    foreground: bool = False
    once: bool = False
    cleanup_only: bool = False

    @property
    def lock_path(self) -> Path:
        """The pid/lock file guarding this data directory."""
        return self.pidfile or uploader_pid_path(self.data_dir)

    @property
    def extension(self) -> str:
        """File extension of uploaded batch objects."""
        return self.upload_format


SECONDS, AT_LEAST_1 = ks.above(0), ks.at_least(1)

FIELDS = (
    Field("data_dir", "SENSOR_DATA_DIR", "--data-dir", ks.path, metavar="DIR", default=None, check=ks.writable_dir,
          shown_default="— (required)", help="data directory written by `sensor-reader`"),
    Field("bucket", "SENSOR_S3_BUCKET", "--bucket", shown_default="— (required unless `--cleanup-only`)",
          help="bucket"),
    Field("prefix", "SENSOR_S3_PREFIX", "--prefix", help="key prefix inside the bucket (leading/trailing `/` "
          "dropped)"),
    Field("endpoint_url", "SENSOR_S3_ENDPOINT_URL", "--endpoint-url", metavar="URL", shown_default="AWS",
          help="endpoint of an S3-compatible server (MinIO, Ceph, `rclone serve s3`); path-style addressing "
          "is used then"),
    Field("region", "SENSOR_S3_REGION", "--region", shown_default="boto3's chain, else `us-east-1`",
          help="region"),
    Field("box_id", "SENSOR_BOX_ID", "--box-id", metavar="ID", shown_default="hostname",
          help="this box's id in the keys (made path-safe)"),
    Field("upload_format", "SENSOR_UPLOAD_FORMAT", "--format", check=ks.within(*FORMATS),
          help=f"`{PARQUET}` (zstd), `{CSV_GZ}`, or `{CSV}`"),
    Field("interval", "SENSOR_UPLOAD_INTERVAL", "--interval", ks.number, check=SECONDS,
          help="seconds between passes when idle (a larger backlog is worked off without pause)"),
    Field("watch", "SENSOR_UPLOAD_WATCH", "--watch", ks.boolean, metavar="BOOL",
          help="`1` = start a pass within a second of a batch's commit (inotify on the data dir); `0` = poll "
          "every `--interval` only. Without inotify (watch limit, not Linux) it polls, logged once"),
    Field("backoff_max", "SENSOR_UPLOAD_BACKOFF_MAX", "--backoff-max", ks.number, check=SECONDS,
          help="cap of the exponential backoff during an outage (1, 2, 4 … s)"),
    Field("fatal_retry", "SENSOR_UPLOAD_FATAL_RETRY", "--fatal-retry", ks.number, check=SECONDS,
          help="retry delay after bad credentials / a missing bucket"),
    Field("concurrency", "SENSOR_UPLOAD_CONCURRENCY", "--concurrency", ks.integer, check=AT_LEAST_1,
          help="concurrent uploads in all"),
    Field("workers", "SENSOR_UPLOAD_WORKERS", "--workers", ks.integer, check=AT_LEAST_1,
          help="threads validating, describing and converting a chunk (Dask's threaded scheduler)"),
    Field("chunk", "SENSOR_UPLOAD_CHUNK", "--chunk", ks.integer, check=AT_LEAST_1,
          help="batches per Luigi task (one Dask call); at most two chunks are in flight"),
    Field("max_batches", "SENSOR_UPLOAD_MAX_BATCHES", "--max-batches", ks.integer, check=AT_LEAST_1,
          help="at most this many batches per pass (bounds a pass; the next one follows at once)"),
    Field("connect_timeout", "SENSOR_S3_CONNECT_TIMEOUT", "--connect-timeout", ks.number, check=SECONDS,
          help="seconds to connect to S3"),
    Field("read_timeout", "SENSOR_S3_READ_TIMEOUT", "--read-timeout", ks.number, check=SECONDS,
          help="seconds to wait for S3 data"),
    Field("max_attempts", "SENSOR_S3_MAX_ATTEMPTS", "--max-attempts", ks.integer, check=AT_LEAST_1,
          help="boto3 attempts per request (standard retry mode: network errors, 5xx, SlowDown)"),
    Field("checksum_mode", "SENSOR_S3_CHECKSUM", "--checksum-mode", check=ks.within(*CHECKSUM_MODES),
          metavar="MODE", help="boto3 `request_checksum_calculation`/`response_checksum_validation`; "
          "`when_supported` sends the CRC headers boto3 ≥ 1.36 adds by default, which many non-AWS servers reject"),
    Field("quota_bytes", "SENSOR_QUOTA_BYTES", "--quota-bytes", ks.size, check=ks.above(0), metavar="SIZE",
          shown_default="unset", help="byte quota over the data dir (`20G`, `500M`, bytes); unset = percent of "
          "the data filesystem"),
    Field("quota_high", "SENSOR_QUOTA_HIGH_PERCENT", "--quota-high", ks.number, metavar="PERCENT",
          help="start cleanup above this percent used (of the filesystem, or of the byte quota)"),
    Field("quota_low", "SENSOR_QUOTA_LOW_PERCENT", "--quota-low", ks.number, metavar="PERCENT",
          help="clean down to this percent"),
    Field("evict_unuploaded", "SENSOR_EVICT_UNUPLOADED", "--evict-unuploaded", ks.boolean, metavar="BOOL",
          help="`1` = cleanup may also delete closed sessions that are **not uploaded** (after all touched ones)"),
    Field("pidfile", "SENSOR_UPLOADER_PIDFILE", "--pidfile", ks.path, metavar="FILE",
          shown_default=f"`DATA_DIR/{UPLOADER_PID_NAME}`", help="pid and lock file"),
    Field("log_file", "SENSOR_UPLOADER_LOG_FILE", "--log-file", ks.path, metavar="FILE",
          shown_default=f"`DATA_DIR/{UPLOADER_LOG_NAME}`",
          help="log file of the detached daemon (attached modes log to stderr)"),
    Field("log_level", "SENSOR_LOG_LEVEL", "--log-level", ks.log_level, check=ks.known_level,
          help="log level; `DEBUG` also shows Luigi's per-task log"),
    Field("progress", "SENSOR_UPLOAD_PROGRESS", "--progress", check=ks.within(*PROGRESS_MODES), metavar="MODE",
          help="progress bar: `auto` (attached and stderr is a terminal), `on`, `off`"),
    Field("aws_access_key_id", "AWS_ACCESS_KEY_ID", external=True,
          help="S3 access key id; or the shared credentials file / any source of boto3's default chain. "
          "Never logged"),
    Field("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", external=True, help="S3 secret access key. Never logged"),
)

TABLE = ks.Table("uploader", FIELDS, Settings, SettingsError)


def add_arguments(parser: argparse.ArgumentParser | Any) -> None:
    """Declare every settings flag on a parser (defaults None so the environment can fill in)."""
    TABLE.add_arguments(parser)


def from_sources(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Build validated settings: CLI flags override the environment, which overrides defaults."""
    values = TABLE.read(args, environ)
    values.update({mode: bool(getattr(args, mode, False)) for mode in ("foreground", "once", "cleanup_only")})
    if "data_dir" not in values:
        raise SettingsError("the data directory is required: --data-dir DIR or SENSOR_DATA_DIR")
    values.setdefault("box_id", socket.gethostname())
    return validate(Settings(**values))


def validate(s: Settings) -> Settings:
    """Check every setting, returning a normalised copy or raising SettingsError with a clear message."""
    TABLE.validate(s)
    data_dir = Path(s.data_dir).expanduser().absolute()
    if data_dir.exists() and not data_dir.is_dir():
        raise TABLE.fail("data_dir", f"{data_dir} is not a directory")
    if not s.cleanup_only and not s.bucket:
        raise SettingsError("the bucket is required: --bucket NAME or SENSOR_S3_BUCKET")
    if s.bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", s.bucket):
        raise TABLE.fail("bucket", f"{s.bucket!r} is not a valid S3 bucket name")
    prefix = s.prefix.strip("/")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise TABLE.fail("prefix", f"{s.prefix!r} has empty, '.' or '..' segments")
    if s.endpoint_url:
        url = urlparse(s.endpoint_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise TABLE.fail("endpoint_url", f"{s.endpoint_url!r} is not an http(s) URL")
    if not 0 < s.quota_low < s.quota_high <= 100:
        raise SettingsError(
            f"quota watermarks: need 0 < low ({s.quota_low}) < high ({s.quota_high}) <= 100 "
            "(--quota-low/--quota-high, SENSOR_QUOTA_LOW_PERCENT/SENSOR_QUOTA_HIGH_PERCENT)"
        )
    return dataclasses.replace(
        s,
        data_dir=data_dir,
        prefix=prefix,
        box_id=safe_id(s.box_id),
        log_level=s.log_level.upper(),
        pidfile=Path(s.pidfile).absolute() if s.pidfile else None,
        log_file=Path(s.log_file).absolute() if s.log_file else None,
    )
