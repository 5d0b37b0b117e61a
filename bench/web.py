"""Dashboard benchmarks: line-to-pixel latency with 10 viewers, Daphne CPU per viewer, chart fps at 4 kHz.

Real parts throughout: the simulator on a pty, sensor-reader, sensor-web (Daphne) and headless Chromium.
The 10 viewers are 1 browser page (which measures) + 9 websocket clients (threads reading everything).
Run: ``python -m bench.web`` (needs `make web-assets` for uPlot).
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

BIN = Path(sys.executable).parent
TOKEN = "bench-ingest-token-0123456789"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    """Poll until truthy or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_share(pid: int, seconds: float) -> float:
    """Fraction of one core a process used over the next ``seconds``."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


@contextmanager
def chain(work: Path, channels: int, rate: float) -> Iterator[tuple[Any, subprocess.Popen[bytes], str]]:
    """Simulator -> sensor-reader -> sensor-web; yields (simulator, web process, base URL)."""
    from simulator import Simulator

    port = free_port()
    data = work / f"data-{rate:.0f}"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENSOR_", "DJANGO_"))}
    env.update(
        SENSOR_WEB_DEV="1",
        SENSOR_INGEST_TOKEN=TOKEN,
        SENSOR_DATA_DIR=str(data),
        SENSOR_LOG_LEVEL="WARNING",
        SENSOR_WS_URL=f"ws://127.0.0.1:{port}/ws/ingest/",
    )
    logs = open(work / f"services-{rate:.0f}.log", "wb")  # noqa: SIM115 - closed in the finally below
    web = subprocess.Popen([str(BIN / "sensor-web"), "--port", str(port)], env=env, stdout=logs, stderr=logs)
    sim = Simulator(work / f"sim-{rate:.0f}", channels=channels, rate=rate, seq=True).start()
    reader = None
    try:
        wait_until(lambda: _listening(port), 30, "sensor-web")
        reader = subprocess.Popen(
            [str(BIN / "sensor-reader"), "--port", str(sim.link), "--data-dir", str(data), "--seq"],
            env=env,
            stdout=logs,
            stderr=logs,
        )
        yield sim, web, f"http://127.0.0.1:{port}"
    finally:
        for proc in (reader, web):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
        sim.stop()
        logs.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@contextmanager
def browser(url: str) -> Iterator[webdriver.Chrome]:
    """Headless Debian Chromium on the dashboard, fresh profile."""
    profile = tempfile.mkdtemp(prefix="bench-web-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class WriteClock(threading.Thread):
    """Samples the simulator's count of written lines every millisecond: line i was written by time t."""

    def __init__(self, sim: Any) -> None:
        super().__init__(daemon=True)
        self.sim = sim
        self.samples: list[tuple[int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        """Poll until stopped."""
        last = -1
        while not self.stop.is_set():
            n = self.sim.sent_count
            if n != last:
                self.samples.append((n, time.time()))
                last = n
            time.sleep(0.001)

    def written_at(self, index: int) -> float | None:
        """Wall time (s) by which line ``index`` (0-based) had been written."""
        counts = [c for c, _ in self.samples]
        k = bisect.bisect_right(counts, index)
        return self.samples[k][1] if k < len(self.samples) else None


class SocketViewer(threading.Thread):
    """A websocket viewer that reads (and acknowledges) everything it is sent."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.messages = 0
        self.closed: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        """Read until stopped."""
        origin = self.url.replace("ws://", "http://").split("/ws/")[0]
        with connect(self.url, origin=origin, max_size=2**24, compression=None) as ws:
            while not self.stop.is_set():
                try:
                    ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                except ConnectionClosed as err:  # the server stopped, or dropped this viewer
                    self.closed = err.rcvd.code if err.rcvd else -1
                    return
                self.messages += 1
                if self.messages % 10 == 0:
                    ws.send(json.dumps({"ack": self.messages}))


def _caught_up(url: str) -> bool:
    """True when no viewer has more than 64 kB sent-but-unacknowledged or queued (its backfill is through)."""
    import urllib.request

    with urllib.request.urlopen(url + "/api/status", timeout=10) as resp:
        pending = json.loads(resp.read())["web"]["viewer_bytes"]
    return all(b < 65536 for b in pending.values())


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_and_cpu(work: Path) -> dict[str, Any]:
    """8 ch x 1 kHz, 10 viewers: write->drawn latency, Daphne CPU with 0, 1 and 10 viewers."""
    out: dict[str, Any] = {}
    with chain(work, channels=8, rate=1000.0) as (sim, web, url):
        clock = WriteClock(sim)
        clock.start()
        wait_until(lambda: sim.sent_count > 2000, 30, "the reader to consume lines")
        out["cpu_0_viewers"] = cpu_share(web.pid, 5.0)
        with browser(url + "/") as driver:
            wait_until(
                lambda: driver.execute_script("return window.__sensorStats.latest"), 30, "drawn samples"
            )
            out["cpu_1_viewer"] = cpu_share(web.pid, 5.0)
            viewers = [SocketViewer(url.replace("http://", "ws://") + "/ws/live/") for _ in range(9)]
            for v in viewers:
                v.start()
            wait_until(lambda: all(v.messages > 20 for v in viewers), 30, "the socket viewers")
            # measure steady state: every viewer has been sent its backfill and caught up with the stream
            wait_until(lambda: _caught_up(url), 60, "the viewers to catch up after their backfill")
            driver.execute_script("window.__sensorStats.log = []; window.__sensorStats.logNext = 0;")
            out["cpu_10_viewers"] = cpu_share(web.pid, 10.0)
            log = driver.execute_script("return window.__sensorStats.log")
            out["fps_1khz"] = driver.execute_script("return window.__sensorStats.fps")
            for v in viewers:
                v.stop.set()
        clock.stop.set()
        clock.join()
    log.sort(key=lambda e: e["seq"])
    newest, every, arrived, host = [], [], [], []
    previous = None
    for entry in log:
        seq = int(entry["seq"])
        first = seq if previous is None else previous + 1
        previous = seq
        written = clock.written_at(seq)
        if written is None:
            continue
        newest.append(entry["drawn"] - written * 1000)
        host.append(entry["drawn"] - entry["t"] * 1000)
        for s in range(first, seq + 1):
            w = clock.written_at(s)
            if w is not None:
                every.append(entry["drawn"] - w * 1000)
                # upper bound: the arrival of the newest message drawn in that frame
                arrived.append(entry["arrived"] - w * 1000)
    out.update(latency_newest=newest, latency_every=every, latency_arrived=arrived, latency_host=host,
               drawn_frames=len(log))
    return out


class Feeder(threading.Thread):
    """A light stand-in for the reader: kernel.frames samples messages of 8 channels every 50 ms."""

    def __init__(self, url: str, channels: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.channels, self.rate = url, channels, rate
        self.stop = threading.Event()

    def run(self) -> None:
        """Send frames paced by the wall clock until stopped."""
        import math

        from kernel.frames import samples_message

        columns = ["seq"] + [f"ch{c + 1}" for c in range(self.channels)]
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with connect(self.url, additional_headers=headers, compression=None, max_size=2**24) as ws:
            t0, seq, frame = time.time(), 0, 0
            while not self.stop.wait(0.05):
                now = time.time()
                upto = int((now - t0) * self.rate)
                rows = "".join(
                    f"{now:.6f},{s}," + ",".join(f"{math.sin(s / (40.0 + 9 * c)):.4f}" for c in range(self.channels))
                    + "\n" for s in range(seq, upto))
                ws.send(samples_message("bench0", "S", frame, columns, rows.encode(), upto - seq, 1))
                seq, frame = upto, frame + 1


@contextmanager
def web_only(work: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """sensor-web alone (for the direct-feed fps measurement)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENSOR_", "DJANGO_"))}
    env.update(SENSOR_WEB_DEV="1", SENSOR_INGEST_TOKEN=TOKEN, SENSOR_DATA_DIR=str(work), SENSOR_LOG_LEVEL="WARNING")
    web = subprocess.Popen([str(BIN / "sensor-web"), "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _listening(port), 30, "sensor-web")
        yield web, f"http://127.0.0.1:{port}"
    finally:
        web.terminate()
        web.wait(timeout=20)


def fps_direct(work: Path) -> dict[str, Any]:
    """The same fps figure with frames pushed straight into sensor-web (no simulator/reader on the CPU)."""
    with web_only(work) as (web, url):
        feeder = Feeder(url.replace("http://", "ws://") + "/ws/ingest/", 8, 4000.0)
        feeder.start()
        try:
            with browser(url + "/") as driver:
                return measure_fps(driver, web)
        finally:
            feeder.stop.set()
            feeder.join()


def fps_at_4khz(work: Path) -> dict[str, Any]:
    """8 ch x 4 kHz, 10 s window: frames drawn per second once the window is full (320k points)."""
    with chain(work, channels=8, rate=4000.0) as (_sim, web, url), browser(url + "/") as driver:
        return measure_fps(driver, web)


def measure_fps(driver: webdriver.Chrome, web: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Frames drawn per second over 8 s once a full 10 s window is shown; then a paused control."""
    get = "const s = window.__sensorStats; return [s.frames, performance.now(), s.points, s.latest];"
    wait_until(lambda: driver.execute_script(get)[2] >= 8 * 4000 * 9.8, 60, "a full 10 s window")
    f0, t0, _, _ = driver.execute_script(get)
    driver.execute_script(
        "window.__gaps = []; let last = performance.now();"
        "function g(now) { window.__gaps.push(now - last); last = now; requestAnimationFrame(g); }"
        "requestAnimationFrame(g); return 0;"
    )
    time.sleep(8.0)
    f1, t1, points, _ = driver.execute_script(get)
    gaps = driver.execute_script("return window.__gaps")
    lost = driver.execute_script("return window.__sensorStats.framesLost")
    draw_ms = driver.execute_script("return window.__sensorStats.drawMs")
    cpu = cpu_share(web.pid, 3.0)
    # Control in the same run: the same page paused (data still parsed, nothing drawn) shows what
    # frame rate the browser gives any page on this machine right now.
    raf = "return [window.__sensorStats.rafs, performance.now()];"
    driver.find_element("id", "pause-button").click()
    r0, p0 = driver.execute_script(raf)
    time.sleep(5.0)
    r1, p1 = driver.execute_script(raf)
    return {"fps": (f1 - f0) * 1000.0 / (t1 - t0), "points": points, "worst_gap_ms": max(gaps),
            "frames_lost": lost, "cpu_web_4khz_1_viewer": cpu, "draw_ms": draw_ms,
            "paused_fps": (r1 - r0) * 1000.0 / (p1 - p0)}


def main() -> None:
    """Run the dashboard benchmarks and print the figures."""
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    try:
        lat = latency_and_cpu(work)
        fps = fps_at_4khz(work)
        direct = fps_direct(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    per_viewer = (lat["cpu_10_viewers"] - lat["cpu_1_viewer"]) / 9
    print(
        "web: simulator -> reader -> Daphne -> page, 8 ch x 1 kHz, 10 viewers (1 Chromium page + 9 websockets)"
    )
    for name, key in [
        ("line written -> drawn (newest line of each frame)", "latency_newest"),
        ("line written -> drawn (every line)", "latency_every"),
        ("line written -> arrived in the page (every line)", "latency_arrived"),
        ("reader receive (host_time) -> drawn", "latency_host"),
    ]:
        values = lat[key]
        print(
            f"  {name:<50} p50 {pct(values, 0.5):6.1f} ms  p99 {pct(values, 0.99):6.1f} ms  "
            f"(n={len(values)}, target p99 <= 50 ms every line)"
        )
    print(f"  page fps at 1 kHz {lat['fps_1khz']:.1f}; frames with new data {lat['drawn_frames']}")
    print(
        f"  Daphne CPU: {100 * lat['cpu_0_viewers']:.1f}% of a core with 0 viewers, "
        f"{100 * lat['cpu_1_viewer']:.1f}% with 1, {100 * lat['cpu_10_viewers']:.1f}% with 10 "
        f"-> {100 * per_viewer:.2f}% per extra viewer"
    )
    print(
        f"web: dashboard at 8 ch x 4 kHz, 10 s window ({fps['points']} points): {fps['fps']:.1f} fps "
        f"(target >= 55), worst frame gap {fps['worst_gap_ms']:.0f} ms, stream frames lost {fps['frames_lost']}, "
        f"Daphne CPU {100 * fps['cpu_web_4khz_1_viewer']:.1f}%"
    )
    print(
        f"  mean draw time {fps['draw_ms']:.1f} ms per frame; control: the same page paused gets "
        f"{fps['paused_fps']:.1f} animation frames/s from the browser right now"
    )
    print(f"web: the same with frames pushed straight into sensor-web (no simulator/reader): {direct['fps']:.1f} fps, "
          f"worst frame gap {direct['worst_gap_ms']:.0f} ms, draw {direct['draw_ms']:.1f} ms, "
          f"paused control {direct['paused_fps']:.1f} frames/s")
    print("  (2 shared cores, other work running: figures are noisy; compare within one run)")


if __name__ == "__main__":
    main()
