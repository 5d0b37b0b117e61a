"""One viewer's share of the fan-out: a queue bounded in bytes and a window of unacknowledged bytes in flight.

Daphne writes whatever a consumer sends into Twisted's transport buffer, which has no limit: a browser that
stops reading would grow the server by the whole stream. So a message is only handed to the socket while
the bytes sent and not yet acknowledged by the viewer (``{"ack": <messages received>}``) stay within the
window; the rest waits in the queue, and a queue that would overflow means the viewer is too far behind.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Callable


class Viewer:
    """A subscriber: queued texts, bytes in flight, acknowledgements."""

    _ids = itertools.count(1)

    def __init__(self, window_bytes: int, queue_bytes: int, peer: str = "?",
                 on_drop: Callable[[], None] | None = None) -> None:
        self.id = next(self._ids)
        self.window_bytes = window_bytes
        self.queue_bytes = queue_bytes
        self.peer = peer
        self.on_drop = on_drop
        self.pending: collections.deque[str] = collections.deque()
        self.queued_bytes = 0
        self.sent = 0
        self.sent_bytes = 0
        self.acked = 0
        self.acked_bytes = 0
        self.closed = False
        self._unacked: collections.deque[tuple[int, int]] = collections.deque()  # (message no., bytes so far)
        self._ready = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Bytes handed to the socket and not yet acknowledged."""
        return self.sent_bytes - self.acked_bytes

    def offer(self, text: str) -> bool:
        """Queue a message without waiting; False when it does not fit (the viewer is too far behind)."""
        if self.closed:
            return True
        if self.queued_bytes + len(text) > self.queue_bytes:
            return False
        self.pending.append(text)
        self.queued_bytes += len(text)
        self._ready.set()
        return True

    def ack(self, received: int) -> None:
        """The viewer has received ``received`` messages: their bytes are no longer in flight."""
        if not self.acked < received <= self.sent:
            return
        while self._unacked and self._unacked[0][0] <= received:
            self.acked_bytes = self._unacked.popleft()[1]
        self.acked = received
        self._ready.set()

    def _sendable(self) -> bool:
        if not self.pending:
            return False
        return self.in_flight == 0 or self.in_flight + len(self.pending[0]) <= self.window_bytes

    async def next(self) -> str | None:
        """The next message to send, once the window allows it; None once the viewer is closed."""
        while not self._sendable():
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        text = self.pending.popleft()
        self.queued_bytes -= len(text)
        self.sent += 1
        self.sent_bytes += len(text)
        self._unacked.append((self.sent, self.sent_bytes))
        return text

    def discard(self) -> int:
        """Close: free the queue at once and wake the sender; returns the number of messages thrown away."""
        lost = len(self.pending)
        self.pending.clear()
        self._unacked.clear()
        self.queued_bytes = 0
        self.closed = True
        self._ready.set()
        return lost
