"""`sensor-reader`: record a lab monitor's serial lines into atomic CSV batches and stream them live."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from kernel.layout import BATCH_PREFIX, BATCH_SUFFIX, MANIFEST_NAME
from kernel.logs import setup_logging
from kernel.notify import Notifier
from kernel.settings import add_version
from reader.errors import DeviceBusy, SettingsError
from reader.recorder import Recorder
from reader.settings import TABLE, build_settings

EPILOG = TABLE.epilog() + """

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
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="files only: no live stream")
    mode.add_argument("--demo", action="store_true", help="live stream only: no files")
    TABLE.add_arguments(p)
    add_version(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        settings = build_settings(args, os.environ)
    except SettingsError as err:
        print(f"sensor-reader: {err}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, os.environ)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("reader").info("%s received: finishing the session", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.setswitchinterval(0.0005)  # the read loop returns from poll() often; do not make it wait 5 ms for the GIL
    notifier = Notifier.from_environ(os.environ)
    try:
        return Recorder(settings, notifier, stop).run()
    except DeviceBusy as err:
        logging.getLogger("reader").error("%s", err)
        return 3
    except PermissionError as err:
        logging.getLogger("reader").error("permission denied: %s", err)
        return 4
    finally:
        notifier.close()


if __name__ == "__main__":
    sys.exit(main())
