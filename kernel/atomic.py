"""Atomic file commits: write a temp file in the same folder, flush, fsync, rename, fsync the folder.

The existence of a committed file is the only handshake between the services (a reader's batch, the
uploader's markers), so every contract file is published through here.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Flush a directory entry change (create/rename) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp: Path, final: Path) -> None:
    """Atomically publish an already-fsynced temp file under its final name and flush the directory."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_atomic(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a whole file atomically: temp file in the same folder, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
