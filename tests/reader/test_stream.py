"""The live stream against a real websocket server: content, auth header, outages, and a stalled server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from kernel.frames import parse_message, parse_rows
from kernel.manifest import SessionManifest
from tests.reader.conftest import device_lines, reader_status, recorded_rows, sessions, wait_for


class Sink:
    """A websocket server on loopback that records what the reader sends (or stalls, to test back-pressure)."""

    def __init__(self, port: int = 0, stall: bool = False) -> None:
        self.messages: list[dict] = []
        self.headers: list[str | None] = []
        self.stall = stall
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._stop: asyncio.Future | None = None
        self.port = port
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    async def _handler(self, ws: ServerConnection) -> None:
        with self._cond:
            self.headers.append(ws.request.headers.get("Authorization"))
        if self.stall:
            await self._stop  # never read: the reader's socket buffer fills up
            return
        async for text in ws:
            with self._cond:
                self.messages.append(parse_message(text))
                self._cond.notify_all()

    async def _main(self) -> None:
        self._stop = asyncio.get_running_loop().create_future()
        # A stalled viewer also stops websockets' own read-ahead (max_queue) so back-pressure reaches TCP.
        async with serve(self._handler, "127.0.0.1", self.port, max_size=2**24,
                         max_queue=1 if self.stall else 16) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def close(self) -> None:
        """Stop the server."""
        loop = self._stop.get_loop()  # type: ignore[union-attr]
        loop.call_soon_threadsafe(self._stop.set_result, None)  # type: ignore[union-attr]
        self._thread.join(10)

    def wait(self, predicate, timeout: float = 15.0) -> None:
        """Wait until predicate(messages) holds."""
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.messages), timeout), self.messages[-3:]

    def samples(self) -> list[dict]:
        with self._cond:
            return [m for m in self.messages if m["type"] == "samples"]

    def statuses(self) -> list[dict]:
        with self._cond:
            return [m for m in self.messages if m["type"] == "status"]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


def _env(port: int) -> dict[str, str]:
    return {"SENSOR_WS_URL": f"ws://127.0.0.1:{port}/ws/ingest/", "SENSOR_INGEST_TOKEN": "s3cret"}


def test_frames_carry_every_line_and_status(sim_factory, start_reader, tmp_path, sink):
    sim = sim_factory(channels=3, rate=1000, seq=True)
    data = tmp_path / "data"
    rp = start_reader("--port", sim.link, "--data-dir", data, "--seq", env=_env(sink.port))
    assert sim.wait_sent(1500, 10)
    sink.wait(lambda ms: sum(m["n"] for m in ms if m["type"] == "samples") >= 1000)
    assert sink.headers[0] == "Bearer s3cret"
    frames = sink.samples()
    assert len(frames) >= 5 and all(f["decimation"] == 1 for f in frames)
    assert [f["frame"] for f in frames] == list(range(1, len(frames) + 1))
    rows = [r for f in frames for r in parse_rows(f)]
    assert [",".join(r[1:]) for r in rows] == sim.sent[: len(rows)]  # same text as on disk, in order
    assert all(abs(float(r[0]) - float(rows[0][0])) < 60 for r in rows)
    assert frames[0]["columns"] == ["seq", "ch1", "ch2", "ch3"]
    assert frames[0]["session"] == sessions(data, sim.link.name)[0].name
    sink.wait(lambda ms: any(m["type"] == "status" and m["connected"] for m in ms))
    sim.unplug()
    sink.wait(lambda ms: ms[-1]["type"] == "status" and ms[-1]["connected"] is False)
    assert rp.terminate() == 0


def test_fast_device_is_decimated_for_display_only(sim_factory, start_reader, tmp_path, sink):
    sim = sim_factory(channels=2, rate=0, seq=True, count=60_000)
    data = tmp_path / "data"
    env = {**_env(sink.port), "SENSOR_STREAM_MAX_RATE": "2000"}
    rp = start_reader("--port", sim.link, "--data-dir", data, "--seq", env=env)
    assert sim.wait_done(30)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == 60_000, 30, "all lines")
    assert rp.terminate() == 0
    frames = sink.samples()
    assert any(f["decimation"] > 1 for f in frames)
    assert sum(f["n"] for f in frames) < 60_000
    assert device_lines(recorded_rows(sessions(data, sim.link.name)[0])) == sim.sent  # disk has every line


def test_web_app_down_then_up_recording_goes_on(sim_factory, start_reader, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sim = sim_factory(channels=2, rate=500, seq=True)
    data = tmp_path / "data"
    rp = start_reader("--port", sim.link, "--data-dir", data, "--seq", env=_env(port))
    rp.wait_log(r"live stream .* unavailable")
    assert sim.wait_sent(500, 10)
    late = Sink(port=port)
    try:
        late.wait(lambda ms: any(m["type"] == "samples" for m in ms))
        rp.wait_log(r"connected again")
        assert rp.log.count("unavailable") == 1  # the outage is logged once, not per retry
    finally:
        late.close()
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 10, "all lines")
    assert rp.terminate() == 0
    assert device_lines(recorded_rows(sessions(data, sim.link.name)[0])) == sim.sent


def test_stalled_web_app_never_slows_recording(sim_factory, start_reader, tmp_path):
    stalled = Sink(stall=True)
    try:
        sim = sim_factory(channels=4, rate=0, seq=True, keep_sent=False)
        data = tmp_path / "data"
        env = {**_env(stalled.port), "SENSOR_STREAM_MAX_RATE": "1e9"}  # no decimation: fill the socket fast
        rp = start_reader("--port", sim.link, "--data-dir", data, "--seq", env=env)
        wait_for(lambda: reader_status(data, sim.link.name).get("frames_dropped", 0) > 0, 60, "drops counted")
        sim.pause()
        assert sim.wait_drained(20)
        wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 30, "all lines recorded")
        assert rp.terminate() == 0
    finally:
        stalled.close()
    m = SessionManifest.load(sessions(data, sim.link.name)[0])
    assert m.lines == sim.sent_count and m.gaps == 0


def test_demo_mode_streams_without_files(sim_factory, start_reader, tmp_path, sink):
    sim = sim_factory(channels=2, rate=500, seq=True)
    rp = start_reader("--port", sim.link, "--demo", env=_env(sink.port))
    sink.wait(lambda ms: sum(m["n"] for m in ms if m["type"] == "samples") >= 200)
    assert rp.terminate() == 0
    assert not any(Path(tmp_path).rglob("*.csv"))


def test_wrong_token_is_reported_clearly(sim_factory, start_reader, tmp_path):
    from websockets.asyncio.server import serve as ws_serve
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    ready = threading.Event()
    box: dict = {}

    def refuse(connection, request):
        return Response(403, "Forbidden", Headers(), b"bad token")

    async def main():
        async with ws_serve(lambda ws: None, "127.0.0.1", 0, process_request=refuse) as server:
            box["port"] = server.sockets[0].getsockname()[1]
            box["stop"] = asyncio.get_running_loop().create_future()
            ready.set()
            await box["stop"]

    t = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    t.start()
    assert ready.wait(10)
    sim = sim_factory(channels=2, rate=200, seq=True)
    rp = start_reader("--port", sim.link, "--data-dir", tmp_path / "d", "--seq", env=_env(box["port"]))
    line = rp.wait_log(r"refused the stream")
    assert "403" in line and "SENSOR_INGEST_TOKEN" in line
    wait_for(lambda: reader_status(tmp_path / "d", sim.link.name).get("lines", 0) > 0, 10, "recording goes on")
    assert rp.terminate() == 0
    box["stop"].get_loop().call_soon_threadsafe(box["stop"].set_result, None)
    t.join(10)
    assert json.loads((tmp_path / "d" / sim.link.name).joinpath(
        sessions(tmp_path / "d", sim.link.name)[0].name, "session.json").read_text())["lines"] > 0


def test_lines_go_out_at_once_when_the_stream_is_idle(sink):
    """No fixed frame interval: with a one-minute ceiling, an idle stream still sends each chunk right away."""
    from reader.stream import LiveStream

    stream = LiveStream(f"ws://127.0.0.1:{sink.port}/", "s3cret", lambda: {"device": "d"}, interval=60.0)
    stream.start()
    try:
        ctx = ("d", "s", ["seq", "ch1"])
        sink.wait(lambda ms: any(m["type"] == "status" for m in ms))  # connected
        for i in range(3):
            stream.offer(ctx, [(b"%d,0.5\n" % i, 1, 1764061139.0 + i)])
            sink.wait(lambda ms, i=i: sum(m["n"] for m in ms if m["type"] == "samples") == i + 1)
        stream.offer(ctx, [(b"3,0.5\n4,0.25\n", 2, 1764061142.0), (b"5,0.0\n", 1, 1764061142.5)])
        sink.wait(lambda ms: sum(m["n"] for m in ms if m["type"] == "samples") == 6)
    finally:
        stream.stop()
    rows = [r for f in sink.samples() for r in parse_rows(f)]
    assert [r[1] for r in rows] == ["0", "1", "2", "3", "4", "5"] and rows[5][0] == "1764061142.500000"
    assert all(f["decimation"] == 1 for f in sink.samples())


def test_a_burst_goes_out_whole_and_a_steady_excess_is_thinned(sink):
    """The display rate is an average: a burst (a late read) right after a frame is not decimated; more is."""
    from reader.stream import LiveStream

    stream = LiveStream(f"ws://127.0.0.1:{sink.port}/", "s3cret", lambda: {"device": "d"}, max_rate=1000.0)
    stream.start()
    try:
        ctx = ("d", "s", ["seq", "ch1"])
        sink.wait(lambda ms: any(m["type"] == "status" for m in ms))  # connected
        stream.offer(ctx, [(b"0,0.5\n", 1, 1764061139.0)])
        sink.wait(lambda ms: len([m for m in ms if m["type"] == "samples"]) == 1)
        burst = b"".join(b"%d,0.5\n" % i for i in range(300))
        stream.offer(ctx, [(burst, 300, 1764061139.3)])  # a few ms after the last frame
        sink.wait(lambda ms: len([m for m in ms if m["type"] == "samples"]) == 2)
        stream.offer(ctx, [(burst + burst, 600, 1764061139.31)])  # more than half a second's worth at once
        sink.wait(lambda ms: len([m for m in ms if m["type"] == "samples"]) == 3)
    finally:
        stream.stop()
    _, burst_frame, excess = sink.samples()
    assert burst_frame["decimation"] == 1 and burst_frame["n"] == 300
    assert excess["decimation"] > 1 and excess["n"] < 600
