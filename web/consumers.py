"""Websocket consumers: the reader's authenticated ingest and the viewers' read-only live stream."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from kernel.frames import parse_envelope
from web import background, markers
from web.hub import get_hub
from web.status import snapshot_text
from web.viewer import Viewer

log = logging.getLogger(__name__)

# Close codes sent before accepting: Daphne turns them into an HTTP 403 at the handshake.
REFUSED = 4403
# Close code for a viewer dropped because it fell too far behind (it stopped reading, or its link is too slow).
TOO_FAR_BEHIND = 4008


def bearer_token(scope: dict[str, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def peer(scope: dict[str, Any]) -> str:
    """The client's address for log lines."""
    client = scope.get("client") or ("?", 0)
    return f"{client[0]}:{client[1]}"


class IngestConsumer(AsyncWebsocketConsumer):
    """Receives the reader's kernel.frames messages and hands them to the fan-out unchanged."""

    async def connect(self) -> None:
        """Accept only a client presenting the configured ingest token."""
        expected = settings.SENSOR_WEB.ingest_token
        given = bearer_token(self.scope)
        if expected is None:
            log.warning("ingest from %s refused: SENSOR_INGEST_TOKEN is not set", peer(self.scope))
        elif given is None:
            log.warning("ingest from %s refused: no bearer token", peer(self.scope))
        elif not hmac.compare_digest(given.encode(), expected.encode()):
            log.warning("ingest from %s refused: wrong token", peer(self.scope))
        else:
            self.devices: set[str] = set()
            self.bad = 0
            self.layer = background.use_layer()
            await self.accept()
            log.info("ingest connected from %s", peer(self.scope))
            return
        await self.close(code=REFUSED)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Decode the envelope once, remember what the status panel needs, forward the text as is."""
        if text_data is None:
            return self._reject("binary message")
        try:
            envelope = parse_envelope(text_data)
        except ValueError as err:
            return self._reject(str(err))
        kind, device, status = envelope.type, envelope.device, envelope.status
        if device not in self.devices:
            self.devices.add(device)
            await self._ingest_state(device, True)
        if self.layer:
            await self.channel_layer.group_send(background.GROUP, {
                "type": "stream.message", "text": text_data, "msg_type": kind, "device": device,
                "status": status,
            })
            return None
        hub = get_hub()
        if status is not None:
            hub.set_status(device, status)
        hub.publish(text_data, kind, device)
        return None

    async def disconnect(self, code: int) -> None:
        """Mark this connection's devices as no longer fed."""
        for device in getattr(self, "devices", ()):
            await self._ingest_state(device, False)
        if hasattr(self, "devices"):
            log.info("ingest from %s closed (code %s)", peer(self.scope), code)

    async def _ingest_state(self, device: str, opened: bool) -> None:
        if self.layer:
            await self.channel_layer.group_send(
                background.GROUP, {"type": "stream.ingest", "device": device, "open": opened})
            return
        hub = get_hub()
        (hub.ingest_opened if opened else hub.ingest_closed)(device)

    def _reject(self, reason: str) -> None:
        self.bad += 1
        if self.bad == 1 or self.bad % 1000 == 0:
            log.warning("ingest from %s: ignored %d bad message(s), last: %s", peer(self.scope), self.bad,
                        reason)


class LiveConsumer(AsyncWebsocketConsumer):
    """Read-only stream for one dashboard: backfill first, then live messages, within its byte budgets."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the consumer; however it ends (closed, or cancelled by a server shutdown), stop the sender."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._leave()

    async def connect(self) -> None:
        """Accept a viewer (a logged-in one when login is required) and start its sender."""
        user = self.scope.get("user")
        if settings.SENSOR_WEB.login_required and not (user and user.is_authenticated):
            log.warning("viewer from %s refused: not logged in", peer(self.scope))
            await self.close(code=REFUSED)
            return
        await self.accept()
        hub = get_hub()
        background.ensure_started(hub)
        self.closing: asyncio.Task[None] | None = None
        self.viewer: Viewer = hub.subscribe(peer(self.scope), self._dropped)
        # The panel fills at once; this first health message also tells the page where the backfill ends.
        self.viewer.offer(snapshot_text(hub, settings.SENSOR_WEB.data_dir))
        for text in markers.backfill(hub, settings.SENSOR_WEB.data_dir):  # the recording sessions' markers
            self.viewer.offer(text)
        self.sender = asyncio.get_running_loop().create_task(self._send_loop())

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Viewers only acknowledge: ``{"ack": <messages received so far>}``."""
        try:
            self.viewer.ack(int(json.loads(text_data or "")["ack"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            pass

    async def disconnect(self, code: int) -> None:
        """Stop the sender and leave the hub."""
        self._leave()

    def _leave(self) -> None:
        if hasattr(self, "viewer"):
            self.sender.cancel()
            get_hub().unsubscribe(self.viewer)

    def _dropped(self) -> None:
        """The hub dropped this viewer (too far behind): close the websocket, which frees Daphne's buffers."""
        self.closing = asyncio.get_running_loop().create_task(self.close(code=TOO_FAR_BEHIND))

    async def _send_loop(self) -> None:
        viewer = self.viewer
        while (text := await viewer.next()) is not None:
            await self.send(text_data=text)
            # A send need not suspend: yield, so that a backfill (hundreds of messages) never holds up the
            # ingest or the other viewers; a reader pushed back too long would drop frames at the seam.
            await asyncio.sleep(0)
