"""With Redis (here the in-memory channel layer), a marker reaches viewers through the layer's group."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from kernel.markers import SOURCE_API, new_marker
from web import background
from web.asgi import websocket_application
from web.hub import get_hub, reset_hub
from web.markers import announce, marker_message


def test_a_marker_travels_through_the_channel_layer(tmp_path: Path) -> None:
    text = marker_message("sim0", "20261129T120000Z", new_marker("stimulus on", SOURCE_API))

    async def body() -> dict[str, object]:
        layer = get_channel_layer()
        earlier = set(layer.groups.get(background.GROUP, {}))  # channels other tests' relays may have left
        viewer = WebsocketCommunicator(websocket_application, "/ws/live/", headers=[(b"origin", b"http://localhost")])
        assert (await viewer.connect())[0]
        while not set(layer.groups.get(background.GROUP, {})) - earlier:  # this relay joins on its first turns
            await asyncio.sleep(0.01)
        await announce(get_hub(), text)  # with the layer: only a group_send, the relay delivers it
        async with asyncio.timeout(10):  # health snapshots keep coming: a deadline on the whole wait
            while (got := json.loads(await viewer.receive_from(timeout=5)))["type"] != "marker":
                pass
        await viewer.disconnect()
        for task in background._tasks.values():
            task.cancel()
        return got

    cfg = dataclasses.replace(settings.SENSOR_WEB, data_dir=tmp_path, login_required=False)
    with override_settings(SENSOR_WEB=cfg, SENSOR_WEB_FANOUT="layer"):
        reset_hub(None)
        try:
            msg = asyncio.run(body())
        finally:
            reset_hub(None)
            background._tasks.clear()
    assert msg["type"] == "marker" and msg["marker"]["label"] == "stimulus on"
