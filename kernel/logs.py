"""The one logging set-up of every entry point: one handler on stderr, journald-aware.

Under systemd with stderr connected to the journal (`JOURNAL_STREAM` names stderr's device and inode),
journald stamps every line itself, so lines carry no timestamp; anywhere else they do. Only entry points
call this: library code only does `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

PLAIN = "%(levelname)s %(name)s: %(message)s"
STAMPED = "%(asctime)s " + PLAIN


def to_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """True when `stream` is the journal stream systemd connected (JOURNAL_STREAM is 'device:inode')."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no real file behind it (a test's StringIO)
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def setup_logging(level: str | int, environ: Mapping[str, str], stream: TextIO | None = None,
                  log_file: Path | None = None) -> logging.Handler:
    """Route the root logger to stderr (or `log_file`, a detached daemon's) at `level`; returns the handler."""
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
        stamped = True
    else:
        out = stream if stream is not None else sys.stderr
        handler = logging.StreamHandler(out)
        stamped = not to_journal(out, environ)
    handler.setFormatter(logging.Formatter(STAMPED if stamped else PLAIN))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
