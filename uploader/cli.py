"""``sensor-uploader``: the entry point (settings, logging, lock, PEP 3143 daemon context)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from kernel.layout import uploader_log_path
from kernel.logs import setup_logging
from kernel.notify import Notifier, under_systemd
from kernel.settings import add_version
from uploader.errors import AlreadyRunning, SettingsError
from uploader.lock import PidLock
from uploader.settings import Settings, add_arguments, from_sources

log = logging.getLogger("uploader")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RUNNING, EXIT_ALARM = 0, 1, 2, 3, 4

DESCRIPTION = """\
Upload committed sensor batches to S3: validate, describe and convert each batch (Parquet zstd by
default), upload it with a checksum, verify it by HEAD, then upload the session manifest and mark the
session folder touched. Keeps the data disk under its quota by deleting the oldest touched sessions.

Modes: detached daemon (default, PEP 3143), --foreground (attached, progress bar on a terminal),
--once (one pass, then exit), --cleanup-only (quota cleanup only, for a systemd timer). Under systemd
(INVOCATION_ID or NOTIFY_SOCKET set) it never detaches and logs to stderr for journald.
Credentials come from boto3's chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials.
"""

EPILOG = """\
exit codes: 0 ok (also after SIGTERM), 1 uploads failed (--once), 2 bad settings,
3 another instance holds the lock, 4 disk quota alarm (--once/--cleanup-only)."""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="sensor-uploader",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    modes = parser.add_argument_group("modes")
    modes.add_argument("--foreground", action="store_true", help="stay attached to the terminal (no daemon)")
    modes.add_argument("--once", action="store_true", help="run one upload pass + cleanup, then exit")
    modes.add_argument("--cleanup-only", action="store_true", help="only enforce the disk quota, then exit")
    add_arguments(parser.add_argument_group("settings (each also from the environment variable shown)"))
    add_version(parser)
    return parser


def configure_logging(settings: Settings, attached: bool, environ: Mapping[str, str]) -> None:
    """One handler: stderr when attached (journald-aware), else the log file; quiet third-party loggers."""
    log_file = None if attached else daemon_log_path(settings)
    setup_logging(settings.log_level, environ, log_file=log_file)
    # Never log request headers (signatures, key ids); Luigi's per-task chatter only when debugging.
    for name in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("luigi", "luigi-interface"):
        logging.getLogger(name).setLevel(logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING)


def daemon_log_path(settings: Settings) -> Path:
    """Where the detached daemon logs."""
    return settings.log_file or uploader_log_path(settings.data_dir)


def _install_stop(stop: threading.Event) -> dict[int, object]:
    """Signal map: SIGTERM/SIGINT request a clean stop (in-flight uploads finish, nothing half-done counts)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return {
        signal.SIGTERM: handler,
        signal.SIGINT: handler,
        signal.SIGHUP: handler,
        signal.SIGTTIN: None,
        signal.SIGTTOU: None,
        signal.SIGTSTP: None,
    }


def run_daemon(settings: Settings, environ: Mapping[str, str]) -> int:
    """Take the lock, enter the daemon context (detached or not), run the service loop."""
    import daemon

    from uploader.service import Service

    systemd = under_systemd(environ)
    attached = settings.foreground or settings.once or systemd
    lock = PidLock(settings.lock_path)
    try:
        lock.acquire(write_pid=attached)  # a detached daemon writes its own pid once it has forked
    except AlreadyRunning as err:
        print(f"sensor-uploader: {err}", file=sys.stderr)
        return EXIT_RUNNING
    if not attached:  # the last words on the terminal: where the daemon went
        print(f"sensor-uploader: detaching; pid in {settings.lock_path} (stop with: kill $(cat "
              f"{settings.lock_path})), log in {daemon_log_path(settings)}", flush=True)
    stop = threading.Event()
    context = daemon.DaemonContext(
        detach_process=not attached,
        working_directory="/",
        umask=0o022,
        files_preserve=[lock.fileno()],
        stdout=sys.stdout if attached else None,
        stderr=sys.stderr if attached else None,
        signal_map=_install_stop(stop),
        prevent_core=True,
    )
    with context:
        lock.write_pid()
        configure_logging(settings, attached, environ)
        log.info(
            "sensor-uploader started (pid %d, %s)",
            os.getpid(),
            "systemd" if systemd else ("attached" if attached else "daemon"),
        )
        # Inside the context: DaemonContext closes every descriptor it was not told to keep.
        notifier = Notifier.from_environ(environ)
        try:
            return Service(settings, stop, notifier).run()
        except Exception:
            log.exception("sensor-uploader crashed")
            return EXIT_FAILED
        finally:
            notifier.close()
            lock.release()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``sensor-uploader``."""
    args = build_parser().parse_args(argv)
    try:
        settings = from_sources(args, os.environ)
    except SettingsError as err:
        print(f"sensor-uploader: {err}", file=sys.stderr)
        return EXIT_USAGE
    if settings.cleanup_only:
        from uploader.service import cleanup_only

        configure_logging(settings, True, os.environ)
        return cleanup_only(settings)
    return run_daemon(settings, os.environ)
