"""`sensor-reader`: record a lab monitor's serial lines into atomic CSV batches and stream them live."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from kernel.layout import BATCH_PREFIX, BATCH_SUFFIX, MANIFEST_NAME
from reader import __version__
from reader.notify import Notifier
from reader.recorder import Recorder
from reader.session import DeviceBusy
from reader.settings import ENV_SETTINGS, SettingsError, build_settings

EPILOG = """\
environment (flags override):
""" + "\n".join(f"  {name:<24} {help}" for name, _, _, help in ENV_SETTINGS) + """

examples:
  sensor-reader --port /dev/ttyUSB0 --data-dir /var/lib/sensor          record and stream
  sensor-reader --port /dev/ttyUSB0 --data-dir ./data --local --seq     record only, first column is a counter
  sensor-reader --port /dev/ttyUSB0 --demo                              stream only, no files

""" + f"""Sessions go to DATA_DIR/<device id>/<session id>/ as {BATCH_PREFIX}NNNNNN{BATCH_SUFFIX} files plus {MANIFEST_NAME}.
SIGTERM or Ctrl-C commits the partial batch, finalises {MANIFEST_NAME} and exits 0.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line (unset flags stay None so the environment can fill them)."""
    p = argparse.ArgumentParser(
        prog="sensor-reader", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--port", help="serial device (e.g. /dev/ttyUSB0) or pyserial URL")
    p.add_argument("--data-dir", type=Path, help="data directory for sessions")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="files only: no live stream")
    mode.add_argument("--demo", action="store_true", help="live stream only: no files")
    p.add_argument("--batch-lines", type=int, help="commit a batch after N lines (default 60000)")
    p.add_argument("--batch-seconds", type=float, help="commit a batch after S seconds (default 60)")
    p.add_argument("--baud", dest="baudrate", type=int, help="baud rate (default 115200)")
    p.add_argument("--parity", choices=["N", "E", "O", "M", "S"], help="parity (default N)")
    p.add_argument("--rtscts", action="store_true", default=None, help="hardware flow control")
    p.add_argument("--seq", action="store_true", default=None, help="the first column is a sequence counter")
    p.add_argument("--delimiter", help="field delimiter of the device's lines (default ',')")
    p.add_argument("--checksum", action="store_true", default=None, help="lines end with an NMEA-style *HH checksum")
    p.add_argument("--max-line", type=int, help="longest accepted line in bytes (default 4096)")
    p.add_argument("--eol", choices=["auto", "lf", "crlf", "cr"],
                   help="line endings: auto (default: LF, CR LF and CR all end a line) or force one")
    p.add_argument("--device-id", help="device id for the folder name (default: USB serial number or port name)")
    p.add_argument("--ws-url", help="web app ingest websocket (default ws://127.0.0.1:8000/ws/ingest/)")
    p.add_argument("--token", help="ingest token (prefer SENSOR_INGEST_TOKEN: flags show in ps)")
    p.add_argument("--stream-max-rate", type=float, help="most lines/s sent live; more are decimated (default 10000)")
    p.add_argument("--max-buffer-mb", type=int, help="memory kept while the disk is unwritable (default 64)")
    p.add_argument("--reserve-mb", type=float,
                   help="disk space kept allocated for a stop while the disk is full (default: the max buffer)")
    p.add_argument("--stop-timeout", type=float,
                   help="seconds a stop or unplug retries a refused disk before using the reserve (default 15)")
    p.add_argument("--log-level", help="DEBUG, INFO (default), WARNING, ERROR")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        settings = build_settings(args, os.environ)
    except SettingsError as err:
        print(f"sensor-reader: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s" if os.environ.get("INVOCATION_ID")
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("reader").info("%s received: finishing the session", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.setswitchinterval(0.0005)  # the read loop returns from poll() often; do not make it wait 5 ms for the GIL
    recorder = Recorder(settings, Notifier.from_environ(dict(os.environ)), stop)
    try:
        return recorder.run()
    except DeviceBusy as err:
        logging.getLogger("reader").error("%s", err)
        return 3
    except PermissionError as err:
        logging.getLogger("reader").error("permission denied: %s", err)
        return 4


if __name__ == "__main__":
    sys.exit(main())
