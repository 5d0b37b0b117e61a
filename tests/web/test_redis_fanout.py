"""Fan-out through Redis (channels_redis): two sensor-web processes, one reader ingest, viewers on both.

Debian's redis-server; a simulated monitor on a pty recorded by a real sensor-reader that streams to the
first process only. A viewer of each process must receive the same sample frames (the reader's texts,
unchanged) and the reader's status.
"""

from __future__ import annotations

import json
import threading
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

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(daemon=True)
        self.ws = ws
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
                if kind == SAMPLES:
                    self.samples.append(text)
                elif kind == STATUS:
                    self.statuses.append(parse_message(text))
        except BaseException as err:  # noqa: BLE001 - reported by the test thread
            self.error = err


def seqs(frames: list[str]) -> list[int]:
    """The sequence numbers of the rows of the frames, in order."""
    return [int(row[1]) for text in frames for row in parse_rows(parse_message(text))]


def test_two_processes_on_redis_serve_the_same_stream(tmp_path: Path, web_server: Any) -> None:
    with running(Redis(tmp_path / "redis")) as redis:
        first = web_server(SENSOR_WEB_REDIS_URL=redis.url)
        second = web_server(SENSOR_WEB_REDIS_URL=redis.url)
        with connect(first.ws_url + "/ws/live/", origin=first.url, open_timeout=10) as ws_a, \
                connect(second.ws_url + "/ws/live/", origin=second.url, open_timeout=10) as ws_b:
            viewers = [Viewer(ws_a), Viewer(ws_b)]
            for viewer in viewers:
                viewer.start()
                assert viewer.ready.wait(10), "no health snapshot on connect"
            sim = Simulator(tmp_path / "sim0", channels=2, rate=1000.0, seq=True, seq_start=SEQ_START)
            sim.start()
            try:
                with running(start_reader(sim.link, first.data_dir, first.ws_url, tmp_path / "reader.log")) \
                        as reader:
                    wait_for(lambda: reader.alive() and not any(v.is_alive() for v in viewers), 20,
                             f"{FRAMES} frames and a status on both viewers (got "
                             f"{[(len(v.samples), len(v.statuses), v.received) for v in viewers]})")
                    for viewer in viewers:
                        viewer.join(5)
            finally:
                sim.stop()
        for server in (first, second):  # before Redis goes
            assert server.stop() == 0, server.output()
        assert "channel layer receive failed" not in first.output() + second.output()
    a, b = viewers
    assert a.error is None and b.error is None, (a.error, b.error, reader.output()[-2000:])
    # The second process got everything through Redis only; both relays joined the group before the reader
    # started, so both saw the stream from its first frame: the same texts, in the same order.
    assert a.samples[:FRAMES] == b.samples[:FRAMES]
    numbers = seqs(a.samples[:FRAMES])
    assert numbers == list(range(SEQ_START, SEQ_START + len(numbers)))  # from the first line, none missing
    first = parse_message(a.samples[0])
    common = min(len(a.statuses), len(b.statuses))
    assert a.statuses[:common] == b.statuses[:common]
    for viewer in viewers:
        status = next(s for s in viewer.statuses if s["connected"])
        assert (status["device"], status["session"]) == (first["device"], first["session"])
