"""The reader's settings: its field table and the one frozen object built from it at the entry point."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from kernel import settings as ks
from kernel.layout import DEVICE_ID_RULE, RESERVE_DIRNAME, is_device_id
from kernel.settings import Field
from reader.errors import SettingsError
from reader.parser import EOL_MODES

__all__ = ["DEFAULT_WS_URL", "TABLE", "ReaderSettings", "SettingsError", "build_settings"]

DEFAULT_WS_URL = "ws://127.0.0.1:8000/ws/ingest/"
PARITIES = ("N", "E", "O", "M", "S")


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
    sample_rate: float = 0.0  # the device's nominal sample rate, Hz (0: the sample clock estimates it)
    max_line: int = 4096
    eol: str = "auto"
    device_id: str | None = None
    ws_url: str = DEFAULT_WS_URL
    token: str | None = None
    stream_interval: float = 0.04  # ~25 frames/s: keeps line-to-screen p99 under 100 ms
    stream_max_rate: float = 10_000.0
    unit: str = ""
    max_buffer_mb: int = 64
    reserve_mb: float | None = None  # None: as much as max_buffer_mb
    stop_timeout: float = 15.0
    log_level: str = "INFO"


def _delimiter(d: str) -> str | None:
    bad = len(d.encode()) != 1 or d in "\r\n*.-+" or d.isalnum()
    return f"delimiter must be one punctuation or whitespace character (got {d!r})" if bad else None


def _device_id(d: str) -> str | None:
    return None if is_device_id(d) else f"device id {d!r} is not a plain folder name: use {DEVICE_ID_RULE}"


FIELDS = (
    Field("port", "SENSOR_PORT", "--port", help="serial device (`/dev/ttyUSB0`, `/dev/sensor/monitor`) or any "
          "pyserial URL"),
    Field("data_dir", "SENSOR_DATA_DIR", "--data-dir", ks.path, default=None, check=ks.writable_dir,
          help="where sessions are written (required unless `--demo`)"),
    Field("batch_lines", "SENSOR_BATCH_LINES", "--batch-lines", ks.integer, help="commit a batch after this many "
          "lines…", check=lambda v: None if v >= 1 else f"must be 1 or more batch lines (got {v})"),
    Field("batch_seconds", "SENSOR_BATCH_SECONDS", "--batch-seconds", ks.number, check=ks.above(0),
          help="…or after this many seconds, whichever comes first"),
    Field("baudrate", "SENSOR_BAUD", "--baud", ks.integer, help="baud rate"),
    Field("parity", "SENSOR_PARITY", "--parity", ks.one_of(*PARITIES), choices=PARITIES,
          help="parity: `N`, `E`, `O`, `M` or `S`"),
    Field("bytesize", "SENSOR_BYTESIZE", None, ks.integer, help="data bits: 5 to 8",
          check=lambda v: None if v in (5, 6, 7, 8) else f"must be 5, 6, 7 or 8 (got {v})"),
    Field("stopbits", "SENSOR_STOPBITS", None, ks.number, help="stop bits: 1, 1.5 or 2",
          check=lambda v: None if v in (1, 1.5, 2) else f"must be 1, 1.5 or 2 (got {v})"),
    Field("rtscts", "SENSOR_RTSCTS", "--rtscts", ks.boolean, switch=True, help="hardware flow control"),
    Field("delimiter", "SENSOR_DELIMITER", "--delimiter", check=_delimiter,
          help="field delimiter of the device's lines (stored as a comma)"),
    Field("seq", "SENSOR_SEQ", "--seq", ks.boolean, switch=True,
          help="the first column is the device's sequence counter (gaps are counted)"),
    Field("sample_rate", "SENSOR_SAMPLE_RATE", "--sample-rate", ks.number, metavar="HZ",
          check=lambda v: None if v >= 0 else f"must be 0 or more Hz (got {v})",
          help="the device's nominal sample rate, the sample clock's start (`0`: estimated from the data); "
          "its drift from this rate is measured"),
    Field("checksum", "SENSOR_CHECKSUM", "--checksum", ks.boolean, switch=True,
          help="every line ends with an NMEA-style `*HH` checksum (XOR of the bytes before `*`)"),
    Field("max_line", "SENSOR_MAX_LINE", "--max-line", ks.integer, check=ks.at_least(16),
          help="longest line accepted, in bytes; memory stays bounded against a line that never ends"),
    Field("eol", "SENSOR_EOL", "--eol", ks.one_of(*EOL_MODES), choices=EOL_MODES,
          help="line endings: `auto` (LF, CR LF and CR-only each end a line, per line) or force `lf`, `crlf`, `cr`"),
    Field("device_id", "SENSOR_DEVICE_ID", "--device-id", check=_device_id, metavar="ID",
          shown_default="USB serial number, else the port's name",
          help="the device's folder name (the [device-id rule](formats.md#on-disk-format): letters, digits, "
          "`.`, `_`, `-`; anything else: exit 2)"),
    Field("ws_url", "SENSOR_WS_URL", "--ws-url", help="the web app's ingest websocket"),
    Field("token", "SENSOR_INGEST_TOKEN", "--token", help="shared secret for the ingest websocket (required "
          "unless `--local`; prefer the variable: flags show in `ps`)"),
    Field("stream_max_rate", "SENSOR_STREAM_MAX_RATE", "--stream-max-rate", ks.number,
          help="most lines per second sent live, on average (a burst of up to half a second's worth goes out "
          "whole); above it every k-th line is sent (display only)"),
    Field("unit", "SENSOR_UNIT", "--unit", ks.stripped, shown_default="—",
          help="unit of the device's values (`mV`, `µV`), sent with the status and shown on the dashboard's "
          "value axis"),
    Field("max_buffer_mb", "SENSOR_MAX_BUFFER_MB", "--max-buffer-mb", ks.integer, check=ks.at_least(1),
          help="memory that holds lines while the disk refuses writes"),
    Field("reserve_mb", "SENSOR_RESERVE_MB", "--reserve-mb", ks.number, shown_default="= max buffer",
          check=lambda v: None if v >= 0 else f"must be 0 or more (got {v})",
          help=f"disk space kept allocated (`{RESERVE_DIRNAME}/`) and released at a stop on a full disk to save what "
          "memory holds; `0` = none"),
    Field("stop_timeout", "SENSOR_STOP_TIMEOUT", "--stop-timeout", ks.number,
          check=lambda v: None if 0 < v <= 600 else f"must be 0..600 s (got {v})",
          help="seconds a stop or unplug retries a refused disk before using the reserve; keep it below the "
          "unit's `TimeoutStopSec` (30) and `WatchdogSec` (30)"),
    Field("log_level", "SENSOR_LOG_LEVEL", "--log-level", ks.log_level, check=ks.known_level,
          help="log level (logs go to stderr, i.e. journald)"),
)

TABLE = ks.Table("reader", FIELDS, ReaderSettings, SettingsError)


def build_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ReaderSettings:
    """Merge the environment (lower priority) and the flags, then validate once."""
    demo, local = bool(getattr(args, "demo", False)), bool(getattr(args, "local", False))
    if demo and local:
        raise SettingsError("--demo (stream only) and --local (files only) exclude each other")
    values = TABLE.read(args, env)
    if not values.get("port"):
        raise SettingsError("no serial port: give --port or set SENSOR_PORT")
    if not demo and not values.get("data_dir"):
        raise SettingsError("no data directory: give --data-dir or set SENSOR_DATA_DIR (or use --demo)")
    if not local and not values.get("token"):
        raise SettingsError(
            "no ingest token for the live stream: set SENSOR_INGEST_TOKEN (or --token), or use --local to record without it"
        )
    values.update(record=not demo, stream=not local, data_dir=None if demo else values["data_dir"])
    s = ReaderSettings(**values)
    TABLE.validate(s)
    if s.stream and not s.ws_url.startswith(("ws://", "wss://")):
        raise TABLE.fail("ws_url", f"must start with ws:// or wss:// (got {s.ws_url!r})")
    return s
