"""In-process fan-out of stream messages: per-viewer byte budgets, viewers too far behind dropped, backfill ring.

Messages are forwarded as the text the reader sent; the hub only looks at the already-decoded envelope
(type, device) and never touches the rows. Publishing never waits. Every viewer has two byte budgets:
``window`` bytes sent and not yet acknowledged (what Daphne's socket buffers can hold for it), and ``queue``
bytes waiting behind that window. A viewer whose queue would overflow has fallen too far behind (it stopped
reading, or its link is slower than the stream): it is dropped, counted and logged once, and its memory is
returned at once. So one slow viewer cannot slow the ingest or the other viewers, nor grow the process.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from kernel.frames import SAMPLES
from web.viewer import Viewer

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DeviceState:
    """What the hub knows about one device: backfill ring (bounded in seconds and bytes), latest status, counters."""

    ring: collections.deque[tuple[float, str]] = dataclasses.field(default_factory=collections.deque)
    ring_bytes: int = 0
    status_text: str | None = None
    status: dict[str, Any] = dataclasses.field(default_factory=dict)
    status_at: float = 0.0
    last_frame_at: float = 0.0
    frames: int = 0
    ingest_open: int = 0


class Hub:
    """Fan-out point between the ingest and the viewers of one process."""

    def __init__(self, window_bytes: int = 1 << 20, queue_bytes: int = 4 << 20, backfill_seconds: float = 30.0,
                 backfill_bytes: int = 2 << 20, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.window_bytes = window_bytes
        self.queue_bytes = queue_bytes
        self.backfill_seconds = backfill_seconds
        self.backfill_bytes = backfill_bytes
        self.viewers: dict[int, Viewer] = {}
        self.devices: dict[str, DeviceState] = {}
        self.dropped = 0  # messages lost by viewers that were dropped
        self.viewers_dropped = 0
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
        if msg_type == SAMPLES:
            ring = state.ring
            ring.append((now, text))
            state.ring_bytes += len(text)
            horizon = now - self.backfill_seconds
            while ring and (ring[0][0] < horizon or state.ring_bytes > self.backfill_bytes):
                state.ring_bytes -= len(ring.popleft()[1])
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
        """Offer a message to every viewer; drop those that have fallen too far behind."""
        behind = [viewer for viewer in self.viewers.values() if not viewer.offer(text)]
        for viewer in behind:
            self.drop(viewer, len(text))

    def drop(self, viewer: Viewer, incoming: int = 0) -> None:
        """Disconnect a viewer that fell too far behind: counted, logged once, its queue freed at once."""
        if self.viewers.pop(viewer.id, None) is None:
            return
        self.viewers_dropped += 1
        in_flight, queued = viewer.in_flight, viewer.queued_bytes
        self.dropped += viewer.discard()
        log.warning("viewer %d from %s dropped: too far behind (%d bytes unacknowledged, %d queued, %d more "
                    "arriving; %d viewer(s) dropped so far)", viewer.id, viewer.peer, in_flight, queued, incoming,
                    self.viewers_dropped)
        if viewer.on_drop is not None:
            viewer.on_drop()

    def subscribe(self, peer: str = "?", on_drop: Callable[[], None] | None = None) -> Viewer:
        """Add a viewer, its queue preloaded with the backfill: latest statuses, then the newest recent frames."""
        viewer = Viewer(self.window_bytes, self.queue_bytes, peer, on_drop)
        budget = self.queue_bytes // 2  # leave room for live messages while the backfill goes out
        statuses = [s.status_text for s in self.devices.values() if s.status_text]
        budget -= sum(len(t) for t in statuses)
        horizon = self.clock() - self.backfill_seconds
        frames: list[str] = []
        for state in self.devices.values():
            for t, text in reversed(state.ring):
                if t < horizon or len(text) > budget:
                    break
                frames.append(text)
                budget -= len(text)
        backfill = statuses + frames[::-1]
        for text in backfill:
            viewer.offer(text)
        self.viewers[viewer.id] = viewer
        log.info("viewer %d connected from %s (%d viewers), backfill %d messages", viewer.id, peer,
                 len(self.viewers), len(backfill))
        return viewer

    def unsubscribe(self, viewer: Viewer) -> None:
        """Remove a viewer that left (nothing to do when it was dropped already)."""
        if self.viewers.pop(viewer.id, None) is not None:
            viewer.discard()
            log.info("viewer %d gone (%d left)", viewer.id, len(self.viewers))

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
            "viewers_dropped": self.viewers_dropped,
            "dropped": self.dropped,
            "published": self.published,
            "viewer_bytes": {str(v.id): v.in_flight + v.queued_bytes for v in self.viewers.values()},
        }


_hub: Hub | None = None


def get_hub() -> Hub:
    """The process-wide hub, created from the Django settings on first use."""
    global _hub
    if _hub is None:
        from django.conf import settings

        cfg = settings.SENSOR_WEB
        _hub = Hub(window_bytes=cfg.viewer_window_kb * 1024, queue_bytes=cfg.viewer_queue_kb * 1024,
                   backfill_seconds=cfg.backfill_seconds, backfill_bytes=cfg.backfill_kb * 1024)
    return _hub


def reset_hub(hub: Hub | None = None) -> Hub:
    """Replace the process-wide hub (tests start each case from a clean one)."""
    global _hub
    _hub = hub
    return get_hub()
