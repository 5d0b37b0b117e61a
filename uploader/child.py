"""Set-up of every spawned child (Dask worker, sender): it ignores SIGTERM and dies with the uploader.

Kept free of heavy imports on purpose: a spawned child unpickles this initializer before it runs it, so
the sooner the child gets here, the shorter the start-up window in which a dead parent goes unnoticed.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import wait

PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> None:
    """Ask the kernel for SIGKILL when the parent goes away (Linux; elsewhere the watcher alone acts)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _watch_parent(sentinel: int) -> None:
    """Exit at once when the parent's end of the spawn pipe closes (the parent died, however)."""
    wait([sentinel])
    os._exit(1)


def init_child() -> None:
    """Process-pool initializer: the parent alone handles SIGTERM/SIGINT; the child never outlives it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _set_parent_death_signal()
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    # The death signal only covers a parent that dies from now on; one that died while this child was
    # starting has already closed the pipe, which the watcher sees at once.
    if wait([parent.sentinel], timeout=0):
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent.sentinel,), name="parent-watch", daemon=True).start()
