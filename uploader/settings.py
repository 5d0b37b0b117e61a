"""The uploader's settings: one frozen object built from the environment and CLI flags, validated once."""

from __future__ import annotations

import argparse
import dataclasses
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from kernel.layout import UPLOADER_LOG_NAME, UPLOADER_PID_NAME, safe_id, uploader_pid_path
from kernel.objects import CSV, CSV_GZ, FORMATS, PARQUET
from kernel.s3 import CHECKSUM_MODES
from uploader.errors import SettingsError

PROGRESS_MODES = ("auto", "on", "off")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the uploader needs; see docs/uploader.md for each field's flag and variable."""

    data_dir: Path
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    box_id: str = "box"
    upload_format: str = "parquet"
    interval: float = 10.0
    backoff_max: float = 300.0
    fatal_retry: float = 300.0
    concurrency: int = 4
    workers: int = 2
    upload_processes: int = 2
    chunk: int = 64
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


def parse_size(text: str) -> int:
    """Parse a byte size such as ``8388608``, ``512M`` or ``2GiB``."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 500M, 2G or a byte count)")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).upper()])


def _flag_bool(text: str) -> bool:
    """Parse an environment boolean."""
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r} (use 1 or 0)")


# (field, env name, CLI flag, parser): the single table that ties every setting to its names.
_FIELDS: list[tuple[str, str | None, str, object]] = [
    ("data_dir", "SENSOR_DATA_DIR", "--data-dir", Path),
    ("bucket", "SENSOR_S3_BUCKET", "--bucket", str),
    ("prefix", "SENSOR_S3_PREFIX", "--prefix", str),
    ("endpoint_url", "SENSOR_S3_ENDPOINT_URL", "--endpoint-url", str),
    ("region", "SENSOR_S3_REGION", "--region", str),
    ("box_id", "SENSOR_BOX_ID", "--box-id", str),
    ("upload_format", "SENSOR_UPLOAD_FORMAT", "--format", str),
    ("interval", "SENSOR_UPLOAD_INTERVAL", "--interval", float),
    ("backoff_max", "SENSOR_UPLOAD_BACKOFF_MAX", "--backoff-max", float),
    ("fatal_retry", "SENSOR_UPLOAD_FATAL_RETRY", "--fatal-retry", float),
    ("concurrency", "SENSOR_UPLOAD_CONCURRENCY", "--concurrency", int),
    ("workers", "SENSOR_UPLOAD_WORKERS", "--workers", int),
    ("upload_processes", "SENSOR_UPLOAD_PROCESSES", "--upload-processes", int),
    ("chunk", "SENSOR_UPLOAD_CHUNK", "--chunk", int),
    ("max_batches", "SENSOR_UPLOAD_MAX_BATCHES", "--max-batches", int),
    ("connect_timeout", "SENSOR_S3_CONNECT_TIMEOUT", "--connect-timeout", float),
    ("read_timeout", "SENSOR_S3_READ_TIMEOUT", "--read-timeout", float),
    ("max_attempts", "SENSOR_S3_MAX_ATTEMPTS", "--max-attempts", int),
    ("checksum_mode", "SENSOR_S3_CHECKSUM", "--checksum-mode", str),
    ("quota_bytes", "SENSOR_QUOTA_BYTES", "--quota-bytes", parse_size),
    ("quota_high", "SENSOR_QUOTA_HIGH_PERCENT", "--quota-high", float),
    ("quota_low", "SENSOR_QUOTA_LOW_PERCENT", "--quota-low", float),
    ("evict_unuploaded", "SENSOR_EVICT_UNUPLOADED", "--evict-unuploaded", _flag_bool),
    ("pidfile", "SENSOR_UPLOADER_PIDFILE", "--pidfile", Path),
    ("log_file", "SENSOR_UPLOADER_LOG_FILE", "--log-file", Path),
    ("log_level", "SENSOR_LOG_LEVEL", "--log-level", str),
    ("progress", "SENSOR_UPLOAD_PROGRESS", "--progress", str),
]


def env_names() -> dict[str, str]:
    """Map of CLI flag to environment variable, for help texts and docs."""
    return {flag: env for _, env, flag, _ in _FIELDS if env}


def from_sources(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Build validated settings: CLI flags override the environment, which overrides defaults."""
    values: dict[str, object] = {}
    for name, env, flag, parse in _FIELDS:
        cli_value = getattr(args, name, None)
        raw, source = (cli_value, flag) if cli_value is not None else (environ.get(env or ""), env)
        if raw is None or (isinstance(raw, str) and raw == "" and name != "prefix"):
            continue
        try:
            values[name] = raw if not isinstance(raw, str) else parse(raw)  # type: ignore[operator]
        except ValueError as err:
            raise SettingsError(f"{source}: {err}") from err
    for mode in ("foreground", "once", "cleanup_only"):
        values[mode] = bool(getattr(args, mode, False))
    if "data_dir" not in values:
        raise SettingsError("the data directory is required: --data-dir DIR or SENSOR_DATA_DIR")
    values.setdefault("box_id", socket.gethostname())
    return validate(Settings(**values))  # type: ignore[arg-type]


def validate(s: Settings) -> Settings:
    """Check every setting, returning a normalised copy or raising SettingsError with a clear message."""
    data_dir = Path(s.data_dir).expanduser().absolute()
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingsError(f"--data-dir / SENSOR_DATA_DIR: {data_dir} is not a directory")
    if not s.cleanup_only and not s.bucket:
        raise SettingsError("the bucket is required: --bucket NAME or SENSOR_S3_BUCKET")
    if s.bucket and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", s.bucket):
        raise SettingsError(f"--bucket / SENSOR_S3_BUCKET: {s.bucket!r} is not a valid S3 bucket name")
    prefix = s.prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise SettingsError(f"--prefix / SENSOR_S3_PREFIX: {s.prefix!r} has empty, '.' or '..' segments")
    if s.endpoint_url:
        url = urlparse(s.endpoint_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise SettingsError(
                f"--endpoint-url / SENSOR_S3_ENDPOINT_URL: {s.endpoint_url!r} is not an http(s) URL"
            )
    if s.upload_format not in FORMATS:
        raise SettingsError(
            f"--format / SENSOR_UPLOAD_FORMAT: {s.upload_format!r}; choose one of {', '.join(FORMATS)}"
        )
    if s.checksum_mode not in CHECKSUM_MODES:
        raise SettingsError(
            f"--checksum-mode / SENSOR_S3_CHECKSUM: choose one of {', '.join(CHECKSUM_MODES)}"
        )
    if s.progress not in PROGRESS_MODES:
        raise SettingsError(f"--progress / SENSOR_UPLOAD_PROGRESS: choose one of {', '.join(PROGRESS_MODES)}")
    for name in ("interval", "backoff_max", "fatal_retry", "connect_timeout", "read_timeout"):
        if getattr(s, name) <= 0:
            raise SettingsError(f"{_names(name)}: must be > 0 (got {getattr(s, name)})")
    for name in ("concurrency", "workers", "chunk", "max_batches", "max_attempts"):
        if getattr(s, name) < 1:
            raise SettingsError(f"{_names(name)}: must be >= 1 (got {getattr(s, name)})")
    if s.upload_processes < 0:
        raise SettingsError(f"{_names('upload_processes')}: must be >= 0 (got {s.upload_processes})")
    if not 0 < s.quota_low < s.quota_high <= 100:
        raise SettingsError(
            f"quota watermarks: need 0 < low ({s.quota_low}) < high ({s.quota_high}) <= 100 "
            "(--quota-low/--quota-high, SENSOR_QUOTA_LOW_PERCENT/SENSOR_QUOTA_HIGH_PERCENT)"
        )
    if s.quota_bytes is not None and s.quota_bytes <= 0:
        raise SettingsError("--quota-bytes / SENSOR_QUOTA_BYTES: must be > 0")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"--log-level / SENSOR_LOG_LEVEL: {s.log_level!r} is not a logging level")
    return dataclasses.replace(
        s,
        data_dir=data_dir,
        prefix=prefix,
        box_id=safe_id(s.box_id),
        log_level=s.log_level.upper(),
        pidfile=Path(s.pidfile).absolute() if s.pidfile else None,
        log_file=Path(s.log_file).absolute() if s.log_file else None,
    )


def _names(field: str) -> str:
    """'--flag / ENV' for a field, for messages."""
    for name, env, flag, _ in _FIELDS:
        if name == field:
            return f"{flag} / {env}"
    return field


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every settings flag on a parser (defaults None so the environment can fill in)."""
    helps = {
        "data_dir": "data directory written by sensor-reader",
        "bucket": "S3 bucket",
        "prefix": "key prefix inside the bucket (default: none)",
        "endpoint_url": "S3 endpoint for non-AWS servers (MinIO, Ceph, rclone serve s3)",
        "region": "S3 region (default: boto3's chain, else us-east-1)",
        "box_id": "this box's id in object keys (default: hostname)",
        "upload_format": f"object format: {PARQUET} (zstd, default), {CSV_GZ} or {CSV}",
        "interval": "seconds between passes when idle (default 10)",
        "backoff_max": "cap of the exponential backoff during an outage, seconds (default 300)",
        "fatal_retry": "retry delay after bad credentials / missing bucket, seconds (default 300)",
        "concurrency": "concurrent uploads in all (default 4)",
        "workers": "Dask worker processes for validate/stats/convert (default 2)",
        "upload_processes": "processes the uploads are spread over (default 2; 0 = threads of the daemon)",
        "chunk": "batches per Luigi task batch and Dask call (default 64)",
        "max_batches": "at most this many batches per pass (default 512)",
        "connect_timeout": "S3 connect timeout, seconds (default 5)",
        "read_timeout": "S3 read timeout, seconds (default 30)",
        "max_attempts": "boto3 attempts per request (default 3)",
        "checksum_mode": "boto3 request/response checksum mode: when_required (default) or when_supported",
        "quota_bytes": "byte quota over the data dir (e.g. 20G); default: percent of the filesystem",
        "quota_high": "start cleanup above this percent used (default 90)",
        "quota_low": "clean down to this percent used (default 80)",
        "evict_unuploaded": "1 = may delete closed sessions that are not uploaded (default 0: never)",
        "pidfile": f"pid/lock file (default DATA_DIR/{UPLOADER_PID_NAME})",
        "log_file": f"log file in detached daemon mode (default DATA_DIR/{UPLOADER_LOG_NAME})",
        "log_level": "DEBUG, INFO (default), WARNING, ERROR",
        "progress": "progress bar: auto (foreground on a TTY, default), on, off",
    }
    for name, env, flag, _ in _FIELDS:
        parser.add_argument(
            flag,
            dest=name,
            default=None,
            metavar=name.split("_")[-1].upper(),
            help=f"{helps[name]} [env {env}]",
        )
