"""Consumer tests with channels' WebsocketCommunicator: ingest auth, fan-out, backfill, slow viewers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from kernel.frames import parse_message, samples_message, status_message
from web import background, consumers
from web.asgi import websocket_application
from web.hub import Hub, reset_hub

from .conftest import TOKEN

ORIGIN = (b"origin", b"http://localhost")
WINDOW_KB = 4  # small per-viewer budgets: a few dozen frames fill them
QUEUE_KB = 16


def run(coro_fn: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Run an async test body on a fresh loop with an overall deadline."""
    async def guarded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro_fn()
    return asyncio.run(guarded())


@pytest.fixture(autouse=True)
def web_settings(tmp_path: Any) -> Iterator[Hub]:
    """Every test: a known token, a temp data dir, and a fresh hub."""
    cfg = dataclasses.replace(settings.SENSOR_WEB, ingest_token=TOKEN, data_dir=tmp_path, login_required=False,
                              viewer_window_kb=WINDOW_KB, viewer_queue_kb=QUEUE_KB, backfill_kb=QUEUE_KB // 2)
    with override_settings(SENSOR_WEB=cfg):
        yield reset_hub(None)
    reset_hub(None)
    background._tasks.clear()


def frame(i: int, device: str = "sim0", n: int = 3) -> str:
    """A samples message as the reader builds it (frame i, n rows with seq numbers)."""
    rows = "".join(f"{1764061139 + (i * n + k) / 1000:.6f},{i * n + k},{k * 0.5},{-k}\n" for k in range(n))
    return samples_message(device, "20261125T085900Z", i, ["seq", "ch1", "ch2"], rows.encode(), n, 1)


def status(device: str = "sim0", connected: bool = True) -> str:
    """A status message as the reader builds it."""
    return status_message(device=device, session="20261125T085900Z", connected=connected, port="/dev/pts/9",
                          recording=True, rate=1000.0, lines=12, rejects=1, gaps=0, missing=0,
                          frames_dropped=0, disk_error=None, time=1764061139.5)


def ingest(token: str | None = TOKEN) -> WebsocketCommunicator:
    """A communicator for the ingest endpoint, with an optional bearer token."""
    headers = [(b"authorization", f"Bearer {token}".encode())] if token is not None else []
    return WebsocketCommunicator(websocket_application, "/ws/ingest/", headers=headers)


def viewer() -> WebsocketCommunicator:
    """A communicator for the live endpoint, from an allowed origin."""
    return WebsocketCommunicator(websocket_application, "/ws/live/", headers=[ORIGIN])


async def receive_stream(comm: WebsocketCommunicator, count: int, timeout: float = 5.0) -> list[str]:
    """Receive ``count`` stream messages, skipping the server's health snapshots, acknowledging each one."""
    out: list[str] = []
    while len(out) < count:
        text = await comm.receive_from(timeout=timeout)
        comm.received = getattr(comm, "received", 0) + 1
        await comm.send_to(text_data=json.dumps({"ack": comm.received}))
        if json.loads(text)["type"] != "health":
            out.append(text)
    return out


@pytest.mark.parametrize("token", [None, "wrong-token", ""], ids=["no-token", "wrong-token", "empty-token"])
def test_ingest_refused_without_the_right_token(token: str | None, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        comm = ingest(token)
        connected, code = await comm.connect()
        assert not connected
        assert code == consumers.REFUSED
    with caplog.at_level(logging.WARNING, logger="web.consumers"):
        run(body)
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_ingest_refused_when_no_token_is_configured(caplog: pytest.LogCaptureFixture) -> None:
    cfg = dataclasses.replace(settings.SENSOR_WEB, ingest_token=None)

    async def body() -> None:
        connected, _ = await ingest(TOKEN).connect()
        assert not connected
    with override_settings(SENSOR_WEB=cfg), caplog.at_level(logging.WARNING, logger="web.consumers"):
        run(body)
    assert "SENSOR_INGEST_TOKEN is not set" in caplog.text


def test_frames_fan_out_unchanged_to_every_viewer(web_settings: Hub) -> None:
    sent = [status()] + [frame(i) for i in range(20)]

    async def body() -> list[list[str]]:
        viewers = [viewer() for _ in range(3)]
        for v in viewers:
            assert (await v.connect())[0]
            # the first message is the health snapshot: the panel fills at once
            assert json.loads(await v.receive_from())["type"] == "health"
        source = ingest()
        assert (await source.connect())[0]
        for text in sent:
            await source.send_to(text_data=text)
        got = [await receive_stream(v, len(sent)) for v in viewers]
        await source.disconnect()
        for v in viewers:
            await v.disconnect()
        return got

    for received in run(body):
        assert received == sent  # the very same text, in order
    assert web_settings.dropped == 0
    assert web_settings.devices["sim0"].status["rate"] == 1000.0


def test_new_viewer_gets_backfill_at_once(web_settings: Hub) -> None:
    async def body() -> list[str]:
        source = ingest()
        assert (await source.connect())[0]
        await source.send_to(text_data=status())
        for i in range(10):
            await source.send_to(text_data=frame(i))
        # the ingest consumer handles messages in order: once the hub has them all, connect a viewer
        while web_settings.devices.get("sim0") is None or web_settings.devices["sim0"].frames < 10:
            await asyncio.sleep(0.01)
        late = viewer()
        assert (await late.connect())[0]
        got = await receive_stream(late, 11, timeout=2.0)
        await late.disconnect()
        await source.disconnect()
        return got

    got = run(body)
    assert got[0] == status()
    assert got[1:] == [frame(i) for i in range(10)]


def test_backfill_and_live_frames_join_without_duplicate_or_hole(web_settings: Hub) -> None:
    """A viewer joining while frames stream in gets every frame once, in order; a health message marks the join."""
    async def body() -> list[dict[str, Any]]:
        source = ingest()
        assert (await source.connect())[0]

        async def feed() -> None:
            for i in range(200):
                await source.send_to(text_data=frame(i))
                await asyncio.sleep(0.002)

        feeding = asyncio.get_running_loop().create_task(feed())
        while web_settings.devices.get("sim0") is None or web_settings.devices["sim0"].frames < 50:
            await asyncio.sleep(0.005)
        late = viewer()
        assert (await late.connect())[0]
        got: list[dict[str, Any]] = []
        while not got or got[-1].get("frame") != 199:
            got.append(json.loads(await late.receive_from(timeout=5.0)))
            await late.send_to(text_data=json.dumps({"ack": len(got)}))
        await feeding
        await late.disconnect()
        await source.disconnect()
        return got

    got = run(body)
    frames = [m["frame"] for m in got if m["type"] == "samples"]
    assert frames == list(range(frames[0], 200)) and frames[0] < 50  # backfill then live: contiguous
    join = next(i for i, m in enumerate(got) if m["type"] == "health")
    assert 0 < join < len(got) - 1 and got[join + 1]["type"] == "samples"  # history before it, live after
    assert web_settings.dropped == 0


def test_backfill_keeps_only_the_recent_seconds() -> None:
    now = [100.0]
    hub = Hub(backfill_seconds=30.0, clock=lambda: now[0])
    for i in range(40):
        now[0] = 100.0 + i
        hub.publish(frame(i), "samples", "sim0")
    backfill = list(hub.subscribe().pending)
    assert [parse_message(t)["frame"] for t in backfill] == list(range(9, 40))


def test_backfill_is_bounded_in_bytes() -> None:
    """However fast the device, the ring holds at most its byte budget, and a new viewer gets the newest frames."""
    size = len(frame(0, n=40))
    hub = Hub(window_bytes=4 * size, queue_bytes=40 * size, backfill_seconds=30.0, backfill_bytes=10 * size)
    for i in range(500):
        hub.publish(frame(i, n=40), "samples", "sim0")
    state = hub.devices["sim0"]
    assert state.ring_bytes == sum(len(t) for _, t in state.ring) <= 10 * size
    backfill = [parse_message(t)["frame"] for t in hub.subscribe().pending]
    assert backfill == list(range(500 - len(backfill), 500)) and 8 <= len(backfill) <= 10


def drain(comm: WebsocketCommunicator) -> list[dict[str, Any]]:
    """What the server has handed to a viewer's socket so far, without waiting."""
    out = []
    while not comm.output_queue.empty():
        out.append(comm.output_queue.get_nowait())
    return out


def test_never_reading_viewer_is_dropped_and_others_get_everything(
        web_settings: Hub, caplog: pytest.LogCaptureFixture) -> None:
    """A viewer that stops reading gets at most its window, is then dropped (counted, logged once), freed."""
    count = 300

    async def body() -> tuple[list[str], list[dict[str, Any]]]:
        stalled = viewer()  # connects, then never reads nor acknowledges: its socket buffer would just grow
        assert (await stalled.connect())[0]
        healthy = viewer()
        assert (await healthy.connect())[0]
        source = ingest()
        assert (await source.connect())[0]
        got: list[str] = []
        for i in range(count):
            await source.send_to(text_data=frame(i))
            got.extend(await receive_stream(healthy, 1))  # reads and acknowledges like the dashboard
        handed = [await stalled.receive_output()]  # now it reads: everything handed over, then the close
        while handed[-1]["type"] != "websocket.close":
            handed.append(await stalled.receive_output())
        await source.disconnect()
        await healthy.disconnect()
        await stalled.disconnect(timeout=1)
        return got, handed

    with caplog.at_level(logging.INFO, logger="web.hub"):
        got, handed = run(body)
    assert got == [frame(i) for i in range(count)]  # the reading viewer got everything, in order
    assert web_settings.viewers_dropped == 1 and len(web_settings.viewers) == 0
    texts = [m["text"] for m in handed if m["type"] == "websocket.send"]
    largest = max(len(t) for t in texts)
    assert sum(len(t) for t in texts) <= WINDOW_KB * 1024 + largest  # bytes in flight stayed bounded
    assert handed[-1]["code"] == consumers.TOO_FAR_BEHIND
    assert len([r for r in caplog.records if "dropped: too far behind" in r.getMessage()]) == 1


def test_viewer_gets_more_only_as_it_acknowledges(web_settings: Hub) -> None:
    """Unacknowledged bytes in flight stay within the window; an ack opens it again."""
    count = 40

    async def body() -> tuple[int, int, int]:
        v = viewer()
        assert (await v.connect())[0]
        source = ingest()
        assert (await source.connect())[0]
        for i in range(count):
            await source.send_to(text_data=frame(i))
        while web_settings.devices.get("sim0") is None or web_settings.devices["sim0"].frames < count:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # let the sender hand over whatever the window allows
        first = [m["text"] for m in drain(v)]
        in_flight = sum(len(t) for t in first)
        v.received = len(first)
        await v.send_to(text_data=json.dumps({"ack": v.received}))
        rest = await receive_stream(v, count + 1 - len(first))  # + the health snapshot
        await source.disconnect()
        await v.disconnect()
        return len(first), in_flight, len(rest)

    first, in_flight, rest = run(body)
    assert 0 < in_flight <= WINDOW_KB * 1024
    assert first < count + 1 and first + rest == count + 1  # nothing lost: the rest came after the ack
    assert web_settings.viewers_dropped == 0


def test_bad_ingest_messages_are_ignored_and_counted(web_settings: Hub, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> list[str]:
        v = viewer()
        assert (await v.connect())[0]
        source = ingest()
        assert (await source.connect())[0]
        await source.send_to(text_data="not json")
        await source.send_to(text_data=json.dumps({"type": "other", "device": "x"}))
        await source.send_to(bytes_data=b"\x00\x01")
        await source.send_to(text_data=frame(1))
        got = await receive_stream(v, 1)
        await source.disconnect()
        await v.disconnect()
        return got

    with caplog.at_level(logging.WARNING, logger="web.consumers"):
        assert run(body) == [frame(1)]
    assert "ignored 1 bad message" in caplog.text


def test_viewer_refused_without_login_when_required() -> None:
    cfg = dataclasses.replace(settings.SENSOR_WEB, login_required=True)

    async def body() -> None:
        connected, code = await viewer().connect()
        assert not connected
        assert code == consumers.REFUSED
    with override_settings(SENSOR_WEB=cfg):
        run(body)


def test_viewer_from_foreign_origin_refused() -> None:
    async def body() -> bool:
        comm = WebsocketCommunicator(websocket_application, "/ws/live/", headers=[(b"origin", b"http://evil.example")])
        connected, _ = await comm.connect()
        return connected
    assert run(body) is False


def test_fan_out_through_the_channel_layer(web_settings: Hub) -> None:
    """With Redis configured, frames travel via a channel-layer group (here the in-memory layer)."""
    sent = [status()] + [frame(i) for i in range(5)]

    async def body() -> list[str]:
        v = viewer()
        assert (await v.connect())[0]
        # the relay joins the group on its first loop turns; wait until it is a member
        from channels.layers import get_channel_layer
        layer = get_channel_layer()
        while not layer.groups.get(background.GROUP):
            await asyncio.sleep(0.01)
        source = ingest()
        assert (await source.connect())[0]
        for text in sent:
            await source.send_to(text_data=text)
        got = await receive_stream(v, len(sent))
        await source.disconnect()
        await v.disconnect()
        for task in background._tasks.values():
            task.cancel()
        return got

    with override_settings(SENSOR_WEB_FANOUT="layer"):
        assert run(body) == sent
    assert web_settings.devices["sim0"].status["connected"] is True


def test_health_reports_devices_services_disk_and_alarms(web_settings: Hub, tmp_path: Any) -> None:
    from kernel.status import write_status
    from web.status import snapshot

    write_status(tmp_path, "uploader", {
        "state": "idle", "backlog_batches": 3, "backlog_bytes": 4096, "last_upload": 1764061000.0, "error": None,
        "quota": {"used_bytes": 95, "total_bytes": 100, "alarm": True, "message": "quota 95% used"}})

    async def body() -> None:
        source = ingest()
        assert (await source.connect())[0]
        await source.send_to(text_data=status())
        while "sim0" not in web_settings.devices or not web_settings.devices["sim0"].status:
            await asyncio.sleep(0.01)
        snap = snapshot(web_settings, tmp_path)
        assert snap["devices"]["sim0"]["connected"] is True
        await source.send_to(text_data=status(connected=False))
        while web_settings.devices["sim0"].status.get("connected"):
            await asyncio.sleep(0.01)
        assert snapshot(web_settings, tmp_path)["devices"]["sim0"]["connected"] is False
        await source.disconnect()
        assert snapshot(web_settings, tmp_path)["devices"]["sim0"]["reader_online"] is False

    run(body)
    snap = snapshot(web_settings, tmp_path)
    assert snap["uploader"]["backlog_batches"] == 3
    assert snap["alarms"] == ["quota 95% used"]
    assert snap["disk"]["total"] > 0 and 0 <= snap["disk"]["percent"] <= 100
