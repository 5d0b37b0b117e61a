"""In-process fan-out of stream messages: per-viewer bounded queues, drops counted, backfill ring per device.

Messages are forwarded as the text the reader sent; the hub only looks at the already-decoded envelope
(type, device) and never touches the rows. Publishing never waits: a full viewer queue loses its oldest
message (counted), so one slow viewer cannot slow the ingest or the other viewers.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DeviceState:
    """What the hub knows about one device: backfill ring, latest status, counters."""

    ring: collections.deque[tuple[float, str]] = dataclasses.field(default_factory=collections.deque)
    status_text: str | None = None
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    status_at: float = 0.0
    last_frame_at: float = 0.0
    frames: int = 0
    ingest_open: int = 0


class Viewer:
    """One subscriber: a bounded queue of message texts and its drop counter."""

    _ids = itertools.count(1)

    def __init__(self, maxsize: int) -> None:
        self.id = next(self._ids)
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        self.sent = 0

    def offer(self, text: str) -> bool:
        """Queue a message without waiting; on a full queue drop the oldest. False when something was dropped."""
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            pass
        try:
            self.queue.get_nowait()
        except asyncio.QueueEmpty:  # pragma: no cover - only if a consumer raced us
            pass
        self.dropped += 1
        self.queue.put_nowait(text)
        return False


class Hub:
    """Fan-out point between the ingest and the viewers of one process."""

    def __init__(self, viewer_queue: int = 256, backfill_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.viewer_queue = viewer_queue
        self.backfill_seconds = backfill_seconds
        self.viewers: dict[int, Viewer] = {}
        self.devices: dict[str, DeviceState] = {}
        self.dropped = 0
        self.published = 0

    def device(self, name: str) -> DeviceState:
        """State of a device, created on first sight."""
        state = self.devices.get(name)
        if state is None:
            state = self.devices[name] = DeviceState()
        return state

    def publish(self, text: str, msg_type: str, device: str) -> None:
        """Record a message (ring or latest status) and offer it to every viewer; never waits."""
        now = self.clock()
        state = self.device(device)
        if msg_type == "samples":
            ring = state.ring
            ring.append((now, text))
            horizon = now - self.backfill_seconds
            while ring and ring[0][0] < horizon:
                ring.popleft()
            state.last_frame_at = now
            state.frames += 1
        else:
            state.status_text = text
            state.status_at = now
        self.published += 1
        self.broadcast(text)

    def set_status(self, device: str, status: dict[str, Any]) -> None:
        """Remember the decoded fields of a device's latest status message (for the status panel)."""
        self.device(device).status = status

    def broadcast(self, text: str) -> None:
        """Offer a message to every viewer (drops counted per viewer and in total)."""
        for viewer in self.viewers.values():
            if not viewer.offer(text):
                self.dropped += 1

    def subscribe(self) -> tuple[Viewer, list[str]]:
        """Add a viewer; returns it with the backfill to send first (latest statuses, then recent frames)."""
        viewer = Viewer(self.viewer_queue)
        backfill = [s.status_text for s in self.devices.values() if s.status_text]
        horizon = self.clock() - self.backfill_seconds
        for state in self.devices.values():
            backfill.extend(text for t, text in state.ring if t >= horizon)
        self.viewers[viewer.id] = viewer
        log.info("viewer %d connected (%d viewers), backfill %d messages", viewer.id, len(self.viewers),
                 len(backfill))
        return viewer, backfill

    def unsubscribe(self, viewer: Viewer) -> None:
        """Remove a viewer."""
        if self.viewers.pop(viewer.id, None) is not None:
            log.info("viewer %d gone (%d left), it dropped %d messages", viewer.id, len(self.viewers),
                     viewer.dropped)

    def ingest_opened(self, device: str) -> None:
        """Note that an ingest connection carries this device."""
        self.device(device).ingest_open += 1

    def ingest_closed(self, device: str) -> None:
        """Note that an ingest connection carrying this device closed."""
        state = self.device(device)
        state.ingest_open = max(0, state.ingest_open - 1)

    def stats(self) -> dict[str, Any]:
        """Counters for the status panel and the status API."""
        return {
            "viewers": len(self.viewers),
            "dropped": self.dropped,
            "published": self.published,
            "viewer_drops": {str(v.id): v.dropped for v in self.viewers.values()},
        }


_hub: Hub | None = None


def get_hub() -> Hub:
    """The process-wide hub, created from the Django settings on first use."""
    global _hub
    if _hub is None:
        from django.conf import settings

        cfg = settings.SENSOR_WEB
        _hub = Hub(viewer_queue=cfg.viewer_queue, backfill_seconds=cfg.backfill_seconds)
    return _hub


def reset_hub(hub: Hub | None = None) -> Hub:
    """Replace the process-wide hub (tests start each case from a clean one)."""
    global _hub
    _hub = hub
    return get_hub()
