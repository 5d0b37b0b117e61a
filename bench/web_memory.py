"""sensor-web memory with viewers that never read: RSS with reading viewers only, with never-readers, after.

One run, one sensor-web process fed at 8 ch x 4 kHz (kernel.frames messages straight into /ws/ingest/):
20 reading viewers (websocket clients that read and acknowledge everything) for a phase, then 20 more that
connect and never read their socket again (raw TCP after the handshake) for a phase, then the never-readers
close and a last phase shows what is left. Target: RSS with never-readers <= 1.25x reading-only, and back to
it after they leave. Run: ``python -m bench.web_memory [--seconds 60] [--readers 20] [--stalled 20]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.web import Feeder, SocketViewer, wait_until, web_only

SAMPLE_PERIOD = 0.5


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class NeverReader:
    """A websocket viewer that completes the handshake and then never reads its socket again."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws/live/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)  # byte by byte: not one byte of the stream after the headers is read
            if not chunk:
                raise RuntimeError("the server closed the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head.splitlines()[0]!r}")

    def close(self) -> None:
        """Drop the connection (RST if unread data is pending, as a vanished laptop would)."""
        self.sock.close()


def web_stats(base: str) -> dict[str, Any]:
    """The hub's counters from /api/status."""
    with urllib.request.urlopen(base + "/api/status", timeout=10) as resp:
        return json.loads(resp.read())["web"]


def phase(pid: int, seconds: float) -> tuple[float, float]:
    """Sample RSS for ``seconds``; returns (peak, last) in MB."""
    peak = last = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        last = rss_mb(pid)
        peak = max(peak, last)
        time.sleep(SAMPLE_PERIOD)
    return peak, last


def run(seconds: float, readers: int, stalled: int, rate: float, channels: int) -> dict[str, Any]:
    """The three phases in one sensor-web process; returns the figures."""
    out: dict[str, Any] = {}
    work = Path(os.environ.get("TMPDIR", "/tmp"))
    with web_only(work) as (web, url):
        host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
        feeder = Feeder(f"ws://{host}:{port}/ws/ingest/", channels, rate)
        feeder.start()
        viewers = [SocketViewer(f"ws://{host}:{port}/ws/live/") for _ in range(readers)]
        try:
            for v in viewers:
                v.start()
            wait_until(lambda: all(v.messages > 20 for v in viewers), 60, "the reading viewers")
            out["idle_rss"] = rss_mb(web.pid)
            out["reading_peak"], out["reading_rss"] = phase(web.pid, seconds)
            never = [NeverReader(host, port) for _ in range(stalled)]
            out["stalled_peak"], out["stalled_rss"] = phase(web.pid, seconds)
            out["stats_with_stalled"] = web_stats(url)
            for n in never:
                n.close()
            out["after_peak"], out["after_rss"] = phase(web.pid, seconds)
            out["stats_after"] = web_stats(url)
            out["reader_messages"] = min(v.messages for v in viewers)
            out["readers_alive"] = sum(v.is_alive() for v in viewers)
        finally:
            for v in viewers:
                v.stop.set()
            feeder.stop.set()
            feeder.join()
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the memory benchmark and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.web_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase (default 60)")
    parser.add_argument("--readers", type=int, default=20, help="reading viewers (default 20)")
    parser.add_argument("--stalled", type=int, default=20, help="never-reading viewers (default 20)")
    parser.add_argument("--rate", type=float, default=4000.0, help="lines per second (default 4000)")
    parser.add_argument("--channels", type=int, default=8, help="channels (default 8)")
    args = parser.parse_args(argv)
    r = run(args.seconds, args.readers, args.stalled, args.rate, args.channels)
    base = r["reading_rss"]
    print(f"web memory: sensor-web fed {args.channels} ch x {args.rate:.0f} Hz, {args.seconds:.0f} s per phase")
    print(f"  idle, feed running:                     RSS {r['idle_rss']:7.1f} MB")
    print(f"  {args.readers} reading viewers:                   RSS {base:7.1f} MB (peak {r['reading_peak']:.1f})")
    print(f"  + {args.stalled} never-reading viewers:           RSS {r['stalled_rss']:7.1f} MB "
          f"(peak {r['stalled_peak']:.1f}) = {r['stalled_peak'] / base:.2f}x reading-only (peak) "
          f"(target <= 1.25x)")
    print(f"  after the never-readers left:           RSS {r['after_rss']:7.1f} MB = {r['after_rss'] / base:.2f}x")
    s, a = r["stats_with_stalled"], r["stats_after"]
    print(f"  hub with never-readers: {s.get('viewers')} viewers, viewers dropped "
          f"{s.get('viewers_dropped', 'n/a')}; after: {a.get('viewers')} viewers, messages dropped "
          f"{a.get('dropped')}")
    print(f"  reading viewers still connected {r['readers_alive']}/{args.readers}, "
          f"fewest messages read {r['reader_messages']}")


if __name__ == "__main__":
    main()
