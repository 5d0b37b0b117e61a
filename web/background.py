"""Per-process background tasks: the once-a-second health broadcast and the channel-layer relay (Redis)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from web.hub import Hub
from web.status import snapshot_text

log = logging.getLogger(__name__)

GROUP = "sensor.live"
MARKER_MESSAGE = "stream.marker"  # a marker announcement relayed to every process's viewers (web.markers)
HEALTH_PERIOD = 1.0
REJOIN_PERIOD = 600.0

_tasks: dict[str, asyncio.Task[None]] = {}


def use_layer() -> bool:
    """True when frames travel through the channel layer (Redis configured, or forced for tests)."""
    return bool(settings.SENSOR_WEB.redis_url) or getattr(settings, "SENSOR_WEB_FANOUT", "") == "layer"


def _ensure(name: str, factory: Any) -> None:
    """Start a named task on the running loop unless it already runs there."""
    task = _tasks.get(name)
    loop = asyncio.get_running_loop()
    if task is not None and not task.done() and task.get_loop() is loop:
        return
    _tasks[name] = loop.create_task(factory(), name=f"sensor-web-{name}")


def ensure_started(hub: Hub) -> None:
    """Start the health ticker (and the layer relay when used) in this process if not running."""
    _ensure("health", lambda: health_loop(hub, settings.SENSOR_WEB.data_dir))
    if use_layer():
        _ensure("relay", lambda: relay_loop(hub))


async def health_loop(hub: Hub, data_dir: Path) -> None:
    """Broadcast the status snapshot to the viewers once a second while there are any."""
    while True:
        await asyncio.sleep(HEALTH_PERIOD)
        if hub.viewers:
            try:
                hub.broadcast(snapshot_text(hub, data_dir))
            except Exception:  # best-effort display: never let the ticker die
                log.exception("building the status snapshot failed")


def apply_layer_message(hub: Hub, message: dict[str, Any]) -> None:
    """Apply one relayed channel-layer message to the local hub."""
    kind = message.get("type")
    device = str(message.get("device", ""))
    if kind == "stream.message":
        if message.get("status") is not None:
            hub.set_status(device, message["status"])
        hub.publish(message["text"], message["msg_type"], device)
    elif kind == "stream.ingest":
        (hub.ingest_opened if message.get("open") else hub.ingest_closed)(device)
    elif kind == MARKER_MESSAGE:
        hub.broadcast(message["text"])


async def _join(layer: Any, channel: str) -> bool:
    """Add the relay's channel to the group (again); False when the layer refused (the caller reports it)."""
    try:
        await layer.group_add(GROUP, channel)
    except Exception as err:  # noqa: BLE001 - any layer backend error
        log.debug("joining the channel layer group failed: %s", err)
        return False
    return True


async def _rejoin_loop(layer: Any, channel: str) -> None:
    """Renew the relay's group membership every REJOIN_PERIOD seconds."""
    while True:
        await asyncio.sleep(REJOIN_PERIOD)
        await _join(layer, channel)


async def relay_loop(hub: Hub) -> None:
    """Receive the group's stream messages from the channel layer and feed them to the local hub."""
    layer = get_channel_layer()
    if layer is None:
        log.error("fan-out through the channel layer requested but no channel layer is configured")
        return
    # The default prefix: channels_redis reads every process-local channel ("…!…") of a layer from one Redis
    # list named after that prefix; a channel with another prefix would never be read while consumers wait.
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    log.info("relaying stream messages from the channel layer group %s", GROUP)
    # Group entries expire (channels_redis: after a day) and vanish with a restarted Redis: join again now and then.
    rejoin = asyncio.get_running_loop().create_task(_rejoin_loop(layer, channel), name="sensor-web-rejoin")
    failing = False
    try:
        while True:
            if failing:  # a restarted Redis has forgotten the group: join again before waiting for messages
                if not await _join(layer, channel):
                    await asyncio.sleep(1.0)
                    continue
                failing = False
                log.warning("channel layer reachable again; relaying from the group %s", GROUP)
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - any layer backend error: log once, wait, retry
                if not failing:
                    log.warning("channel layer receive failed (%s); retrying every second", err)
                failing = True
                await asyncio.sleep(1.0)
                continue
            apply_layer_message(hub, message)
    finally:
        rejoin.cancel()
        try:
            await asyncio.shield(layer.group_discard(GROUP, channel))
        except Exception as err:  # noqa: BLE001 - shutting down; the group entry expires anyway
            log.debug("leaving the channel layer group failed: %s", err)
