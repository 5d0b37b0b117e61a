"""The reader's settings: one frozen object built from the environment and CLI flags, validated once."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from kernel.layout import DEVICE_ID_RULE, is_device_id
from reader.parser import EOL_MODES

DEFAULT_WS_URL = "ws://127.0.0.1:8000/ws/ingest/"


class SettingsError(ValueError):
    """A setting is missing or invalid; the message says which and how to fix it."""


@dataclasses.dataclass(frozen=True)
class ReaderSettings:
    """Everything the reader needs, already validated."""

    port: str
    data_dir: Path | None  # None in demo mode
    record: bool  # write batches (not --demo)
    stream: bool  # send the live stream (not --local)
    batch_lines: int = 60_000
    batch_seconds: float = 60.0
    baudrate: int = 115_200
    parity: str = "N"
    bytesize: int = 8
    stopbits: float = 1
    rtscts: bool = False
    delimiter: str = ","
    seq: bool = False
    checksum: bool = False
    max_line: int = 4096
    eol: str = "auto"
    device_id: str | None = None
    ws_url: str = DEFAULT_WS_URL
    token: str | None = None
    stream_interval: float = 0.04  # ~25 frames/s: keeps line-to-screen p99 under 100 ms
    stream_max_rate: float = 10_000.0
    max_buffer_mb: int = 64
    reserve_mb: float | None = None  # None: as much as max_buffer_mb
    stop_timeout: float = 15.0
    log_level: str = "INFO"


# (env name, settings field, type, help) — the one table of the reader's settings; README mirrors it.
ENV_SETTINGS: list[tuple[str, str, type, str]] = [
    ("SENSOR_PORT", "port", str, "serial device path or pyserial URL"),
    ("SENSOR_DATA_DIR", "data_dir", Path, "where sessions are written"),
    ("SENSOR_BATCH_LINES", "batch_lines", int, "commit a batch after this many lines"),
    ("SENSOR_BATCH_SECONDS", "batch_seconds", float, "... or after this many seconds"),
    ("SENSOR_BAUD", "baudrate", int, "baud rate"),
    ("SENSOR_PARITY", "parity", str, "N, E, O, M or S"),
    ("SENSOR_BYTESIZE", "bytesize", int, "data bits: 5-8"),
    ("SENSOR_STOPBITS", "stopbits", float, "1, 1.5 or 2"),
    ("SENSOR_RTSCTS", "rtscts", bool, "hardware flow control"),
    ("SENSOR_DELIMITER", "delimiter", str, "field delimiter of the device's lines"),
    ("SENSOR_SEQ", "seq", bool, "first column is a sequence counter"),
    ("SENSOR_CHECKSUM", "checksum", bool, "lines end with an NMEA-style *HH checksum"),
    ("SENSOR_MAX_LINE", "max_line", int, "longest accepted line in bytes"),
    ("SENSOR_EOL", "eol", str, "line endings: auto (LF, CR LF or CR), lf, crlf or cr"),
    ("SENSOR_DEVICE_ID", "device_id", str, "override the device id (default: USB serial or port name)"),
    ("SENSOR_WS_URL", "ws_url", str, "the web app's ingest websocket"),
    ("SENSOR_INGEST_TOKEN", "token", str, "secret shared with the web app"),
    ("SENSOR_STREAM_MAX_RATE", "stream_max_rate", float, "most lines per second sent live (display only)"),
    ("SENSOR_MAX_BUFFER_MB", "max_buffer_mb", int, "memory held while the disk is unwritable"),
    ("SENSOR_RESERVE_MB", "reserve_mb", float, "disk space kept free for a stop while the disk is full"),
    ("SENSOR_STOP_TIMEOUT", "stop_timeout", float, "seconds a stop or unplug retries a refused disk"),
    ("SENSOR_LOG_LEVEL", "log_level", str, "DEBUG, INFO, WARNING, ERROR"),
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(name: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError("expected 1/0, true/false, yes/no or on/off")
            return low in _TRUE
        return kind(raw)
    except ValueError as err:
        raise SettingsError(f"{name}={raw!r} is not valid: {err}") from err


def build_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ReaderSettings:
    """Merge environment (lower priority) and CLI flags, then validate."""
    values: dict[str, object] = {}
    for env_name, field, kind, _ in ENV_SETTINGS:
        if env.get(env_name) not in (None, ""):
            values[field] = _convert(env_name, env[env_name], kind)
    for field in (f.name for f in dataclasses.fields(ReaderSettings)):
        cli = getattr(args, field, None)
        if cli is not None:
            values[field] = cli
    if args.demo and args.local:
        raise SettingsError("--demo (stream only) and --local (files only) exclude each other")
    values["record"] = not args.demo
    values["stream"] = not args.local
    if not values.get("port"):
        raise SettingsError("no serial port: give --port or set SENSOR_PORT")
    if values["record"] and not values.get("data_dir"):
        raise SettingsError("no data directory: give --data-dir or set SENSOR_DATA_DIR (or use --demo)")
    if not values["record"]:
        values["data_dir"] = None
    if values["stream"] and not values.get("token"):
        raise SettingsError(
            "no ingest token for the live stream: set SENSOR_INGEST_TOKEN (or --token), or use --local to record without it"
        )
    s = ReaderSettings(**values)  # type: ignore[arg-type]
    _validate(s)
    return s


def _validate(s: ReaderSettings) -> None:
    if s.batch_lines < 1:
        raise SettingsError(f"batch lines must be at least 1 (got {s.batch_lines})")
    if s.batch_seconds <= 0:
        raise SettingsError(f"batch seconds must be positive (got {s.batch_seconds})")
    if len(s.delimiter.encode()) != 1 or s.delimiter in "\r\n*." or s.delimiter.isalnum() or s.delimiter in "-+":
        raise SettingsError(f"delimiter must be one punctuation or whitespace character (got {s.delimiter!r})")
    if s.parity not in ("N", "E", "O", "M", "S"):
        raise SettingsError(f"parity must be N, E, O, M or S (got {s.parity!r})")
    if s.bytesize not in (5, 6, 7, 8) or s.stopbits not in (1, 1.5, 2):
        raise SettingsError("bytesize must be 5-8 and stopbits 1, 1.5 or 2")
    if s.max_line < 16:
        raise SettingsError("max line must be at least 16 bytes")
    if s.eol not in EOL_MODES:
        raise SettingsError(f"line endings (--eol, SENSOR_EOL) must be one of {', '.join(EOL_MODES)} (got {s.eol!r})")
    if s.device_id is not None and not is_device_id(s.device_id):
        raise SettingsError(
            f"device id (--device-id, SENSOR_DEVICE_ID) {s.device_id!r} is not a plain folder name: use {DEVICE_ID_RULE}"
        )
    if s.max_buffer_mb < 1:
        raise SettingsError(f"max buffer (--max-buffer-mb, SENSOR_MAX_BUFFER_MB) must be at least 1 (got {s.max_buffer_mb})")
    if s.reserve_mb is not None and not s.reserve_mb >= 0:
        raise SettingsError(f"reserve (--reserve-mb, SENSOR_RESERVE_MB) must be 0 or more (got {s.reserve_mb})")
    if not 0 < s.stop_timeout <= 600:
        raise SettingsError(f"stop timeout (--stop-timeout, SENSOR_STOP_TIMEOUT) must be 0..600 s (got {s.stop_timeout})")
    if s.stream and not s.ws_url.startswith(("ws://", "wss://")):
        raise SettingsError(f"SENSOR_WS_URL must start with ws:// or wss:// (got {s.ws_url!r})")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"unknown log level {s.log_level!r}")
