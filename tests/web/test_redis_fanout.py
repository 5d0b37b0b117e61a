"""Fan-out through Redis (channels_redis): two sensor-web processes, one reader ingest, viewers on both.

Debian's redis-server; a simulated monitor on a pty recorded by a real sensor-reader that streams to the
first process only. A viewer of each process must receive the same sample frames (the reader's texts,
unchanged) and the reader's status.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from kernel.frames import SAMPLES, STATUS, parse_message, parse_rows
from simulator import Simulator
from tests.support import wait_for

from .servers import Redis, running, start_reader

FRAMES = 30  # sample frames each viewer collects (the reader sends one every few ms)
SEQ_START = 500


class Viewer(threading.Thread):
    """A dashboard stand-in: reads the live stream, acknowledges every message, keeps samples and statuses."""

    def __init__(self, ws: ClientConnection, after: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.ws = ws
        self.after = after  # count only frames whose rows were received (host time) after this
        self.samples: list[str] = []
        self.statuses: list[dict[str, Any]] = []
        self.received = 0
        self.ready = threading.Event()  # the first message (the health snapshot) arrived
        self.error: BaseException | None = None

    def run(self) -> None:
        """Collect until FRAMES sample frames and a status of the connected device arrived (or the socket fails)."""
        try:
            while len(self.samples) < FRAMES or not any(s["connected"] for s in self.statuses):
                text = self.ws.recv(timeout=20)
                self.received += 1
                self.ws.send(json.dumps({"ack": self.received}))
                self.ready.set()
                kind = json.loads(text)["type"]
                if kind == SAMPLES and float(parse_rows(parse_message(text))[0][0]) > self.after:
                    self.samples.append(text)
                elif kind == STATUS:
                    self.statuses.append(parse_message(text))
        except BaseException as err:  # noqa: BLE001 - reported by the test thread
            self.error = err


def seqs(frames: list[str]) -> list[int]:
    """The sequence numbers of the rows of the frames, in order."""
    return [int(row[1]) for text in frames for row in parse_rows(parse_message(text))]


def collect(sockets: contextlib.ExitStack, server: Any, ready: bool = True, after: float = 0.0) -> Viewer:
    """A viewer of ``server``, started (after the health snapshot when ``ready``); closed with ``sockets``."""
    ws = sockets.enter_context(connect(server.ws_url + "/ws/live/", origin=server.url, open_timeout=10))
    viewer = Viewer(ws, after)
    viewer.start()
    if ready:
        assert viewer.ready.wait(10), f"no health snapshot on connect ({viewer.error!r})"
    return viewer


def test_two_processes_on_redis_serve_the_same_stream(tmp_path: Path, web_server: Any) -> None:
    redis = Redis(tmp_path / "redis")
    sim = Simulator(tmp_path / "sim0", channels=2, rate=1000.0, seq=True, seq_start=SEQ_START)
    try:
        first = web_server(SENSOR_WEB_REDIS_URL=redis.url)
        second = web_server(SENSOR_WEB_REDIS_URL=redis.url)
        with contextlib.ExitStack() as sockets:
            a, b = collect(sockets, first), collect(sockets, second)
            sim.start()
            reader = sockets.enter_context(
                running(start_reader(sim.link, first.data_dir, first.ws_url, tmp_path / "reader.log")))
            wait_for(lambda: reader.alive() and not (a.is_alive() or b.is_alive()), 20,
                     f"{FRAMES} frames and a status on both viewers (got "
                     f"{[(len(v.samples), len(v.statuses), v.received) for v in (a, b)]})")
            assert a.error is None and b.error is None, (a.error, b.error, reader.output()[-2000:])
            # The second process got everything through Redis only; both relays joined the group before the
            # reader started, so both saw the stream from its first frame: the same texts, in the same order.
            assert a.samples[:FRAMES] == b.samples[:FRAMES]
            numbers = seqs(a.samples[:FRAMES])
            assert numbers == list(range(SEQ_START, SEQ_START + len(numbers)))  # from the first line, none missing
            first_frame = parse_message(a.samples[0])
            common = min(len(a.statuses), len(b.statuses))
            assert a.statuses[:common] == b.statuses[:common]
            for viewer in (a, b):
                status = next(s for s in viewer.statuses if s["connected"])
                assert (status["device"], status["session"]) == (first_frame["device"], first_frame["session"])

            # A restarted Redis has forgotten the group: the reader and the dashboards reconnect by
            # themselves, the relays join the group again, and the stream flows to the second process again.
            redis = redis.restart()
            late = collect(sockets, second, ready=False, after=time.time())  # its backfill is not counted
            late.join(30)
            assert late.error is None and len(late.samples) >= FRAMES, (late.error, len(late.samples))
            again = seqs(late.samples)
            assert again[0] > numbers[-1] and again == sorted(set(again))
        for server in (first, second):  # before Redis goes
            assert server.stop() == 0, server.output()
        log = first.output() + second.output()
        assert log.count("channel layer receive failed") == 2 and log.count("channel layer reachable again") == 2
    finally:
        sim.stop()
        redis.stop()
