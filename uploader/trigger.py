"""Wake the upload loop when a batch is committed: inotify on the data dir, its devices and their sessions.

Polling stays the fallback: when inotify cannot be used (not Linux, the watch limit, too many instances),
that is logged once and the loop waits its interval as before. A filesystem that sends no events (NFS,
some FUSE mounts) just leaves the poll to find the batches.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kernel.layout import MANIFEST_NAME, batch_index, is_hidden

log = logging.getLogger(__name__)

DEBOUNCE = 0.05  # seconds: a burst of commits (several devices, a manifest after its batch) makes one pass
DEVICE_DEPTH, SESSION_DEPTH = 1, 2  # data dir (0) → device folder (1) → session folder (2)
_GONE = (errno.ENOENT, errno.ENOTDIR)  # a folder removed before we could watch it: nothing to watch


class BatchTrigger:
    """Sets ``fired`` shortly after a batch is committed, a manifest replaced or a folder added; or on stop."""

    def __init__(self, data_dir: Path, stop: threading.Event, interval: float, debounce: float = DEBOUNCE):
        self.data_dir = data_dir
        self.stop = stop
        self.interval = interval
        self.debounce = debounce
        self.fired = threading.Event()
        self._closing = threading.Event()
        self._inotify: Any = None
        self._flags: Any = None
        self._watches: dict[int, tuple[Path, int]] = {}  # watch descriptor → (folder, depth)
        self._wake: tuple[int, int] | None = None  # pipe that wakes the reading thread on close
        self._thread: threading.Thread | None = None
        self._degraded = False

    @property
    def watched(self) -> int:
        """Number of folders watched now."""
        return len(self._watches)

    def start(self) -> bool:
        """Watch the tree and start the reading thread; False (logged once) when inotify cannot be used."""
        try:
            from inotify_simple import INotify, flags

            self._inotify, self._flags = INotify(), flags
        except (ImportError, OSError) as err:
            log.warning("inotify unavailable (%s); polling every %g s only", err, self.interval)
            return False
        self._watch_tree(self.data_dir, 0)
        if not self._watches:
            log.warning("inotify cannot watch %s; polling every %g s only", self.data_dir, self.interval)
            self._inotify.close()
            return False
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._read_loop, name="commit-trigger", daemon=True)
        self._thread.start()
        # Only wakes the loop's wait on stop; ends with the process (the daemon always stops through `stop`).
        threading.Thread(target=self._relay_stop, name="commit-trigger-stop", daemon=True).start()
        return True

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a commit (or stop); True when woken early. Re-arms the trigger."""
        woken = self.fired.wait(timeout)
        self.fired.clear()
        return woken

    def close(self) -> None:
        """Stop the reading thread and release the inotify descriptor."""
        self._closing.set()
        if self._wake is not None:
            os.write(self._wake[1], b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._inotify is not None:
            self._inotify.close()
        if self._wake is not None:
            for fd in self._wake:
                os.close(fd)
        self._inotify, self._wake, self._thread = None, None, None
        self._watches.clear()

    # --- the reading thread -------------------------------------------------------------------------

    def _read_loop(self) -> None:
        """Read events until closed; after a relevant one, gather the burst, then fire."""
        assert self._wake is not None
        poller = select.poll()
        poller.register(self._inotify.fileno(), select.POLLIN)
        poller.register(self._wake[0], select.POLLIN)
        while not self._closing.is_set():
            ready = {fd for fd, _ in poller.poll()}
            if self._wake[0] in ready or self._closing.is_set():
                return
            if not self._handle(self._inotify.read(timeout=0)):
                continue
            if self._closing.wait(self.debounce):
                return
            self._handle(self._inotify.read(timeout=0))  # the rest of the burst (new folders get watched)
            self.fired.set()

    def _relay_stop(self) -> None:
        """Wake the loop's wait when a stop is requested."""
        self.stop.wait()
        self.fired.set()

    def _handle(self, events: Iterable[Any]) -> bool:
        """Track folders; True when one of the events means there may be work."""
        flags, relevant = self._flags, False
        for ev in events:
            if ev.mask & flags.Q_OVERFLOW:  # events were lost: watch whatever is new and rescan
                self._watch_tree(self.data_dir, 0)
                relevant = True
                continue
            if ev.mask & flags.IGNORED:  # the folder is gone (session evicted, device removed)
                self._watches.pop(ev.wd, None)
                continue
            where = self._watches.get(ev.wd)
            if where is None or not ev.name:
                continue
            folder, depth = where
            if ev.mask & flags.ISDIR:
                if depth < SESSION_DEPTH and not is_hidden(ev.name):
                    self._watch_tree(folder / ev.name, depth + 1)
                    relevant = True  # it may already hold batches committed before its watch existed
            elif depth == SESSION_DEPTH and (batch_index(ev.name) is not None or ev.name == MANIFEST_NAME):
                relevant = True
        return relevant

    def _watch_tree(self, folder: Path, depth: int) -> None:
        """Watch a folder and, above the session level, its visible subfolders."""
        flags = self._flags
        if depth < SESSION_DEPTH:
            mask = flags.CREATE | flags.MOVED_TO | flags.ONLYDIR
        else:
            mask = flags.MOVED_TO | flags.ONLYDIR  # the reader's commit is a rename into the session
        try:
            wd = self._inotify.add_watch(folder, mask)
        except OSError as err:
            if err.errno not in _GONE:
                self._degrade(folder, err)
            return
        self._watches[wd] = (folder, depth)
        if depth >= SESSION_DEPTH:
            return
        try:
            subfolders = [Path(e.path) for e in os.scandir(folder) if e.is_dir() and not is_hidden(e.name)]
        except OSError:
            return
        for sub in subfolders:
            self._watch_tree(sub, depth + 1)

    def _degrade(self, folder: Path, err: OSError) -> None:
        """Log once that some folder is not watched: its batches wait for the next poll."""
        if not self._degraded:
            self._degraded = True
            hint = " (raise fs.inotify.max_user_watches)" if err.errno == errno.ENOSPC else ""
            log.warning(
                "inotify cannot watch %s: %s%s; batches there are found by the poll every %g s",
                folder,
                os.strerror(err.errno or 0),
                hint,
                self.interval,
            )
