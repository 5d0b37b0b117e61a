"""Reader throughput: raw os.read of a pty vs the full sensor-reader pipeline on the same pty, same run."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

from websockets.asyncio.server import serve

from kernel.layout import committed_batches, session_dirs
from kernel.manifest import SessionManifest


def make_data(lines: int, channels: int = 8) -> bytes:
    """Realistic 8-channel lines with a sequence counter (~80 bytes each)."""
    import numpy as np

    rng = np.random.default_rng(1)
    values = rng.normal(0, 1, size=(min(lines, 10_000), channels))
    body = [",".join(f"{v:.5f}" for v in row) for row in values]
    return b"".join(b"%d,%s\n" % (i, body[i % len(body)].encode()) for i in range(lines))


def _writer(master: int, data: bytes, start: mp.Event) -> None:
    start.wait()
    view = memoryview(data)
    while view:
        view = view[os.write(master, view[: 1 << 16]) :]


def _pty() -> tuple[int, int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def raw_read(data: bytes) -> float:
    """Seconds for os.read (64 KiB) to drain ``data`` through a pty."""
    master, slave, _ = _pty()
    start = mp.Event()
    w = mp.Process(target=_writer, args=(master, data, start))
    w.start()
    t0 = time.perf_counter()
    start.set()
    got = 0
    while got < len(data):
        got += len(os.read(slave, 1 << 16))
    dt = time.perf_counter() - t0
    w.join()
    os.close(master)
    os.close(slave)
    return dt


class Sink:
    """A local websocket server that accepts the reader's stream and counts what arrives."""

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True).start()
        self._ready.wait(10)

    async def _handler(self, ws) -> None:  # type: ignore[no-untyped-def]
        async for msg in ws:
            self.frames += 1
            self.bytes += len(msg)

    async def _main(self) -> None:
        async with serve(self._handler, "127.0.0.1", 0, max_size=2**24, compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await asyncio.Future()


def pipeline(data: bytes, lines: int, workdir: Path, sink: Sink) -> tuple[float, float]:
    """Seconds and CPU seconds for sensor-reader to record ``data`` (all lines committed) from a pty."""
    master, slave, name = _pty()
    link = workdir / "bench0"
    link.symlink_to(name)
    data_dir = workdir / "data"
    env = {**os.environ, "SENSOR_INGEST_TOKEN": "bench", "SENSOR_WS_URL": f"ws://127.0.0.1:{sink.port}/"}
    exe = shutil.which("sensor-reader") or str(Path(sys.executable).with_name("sensor-reader"))
    proc = subprocess.Popen([exe, "--port", str(link), "--data-dir", str(data_dir), "--seq", "--log-level", "WARNING"],
                            env=env)
    status = data_dir / ".status" / "reader-bench0.json"
    deadline = time.monotonic() + 20
    while not status.exists():  # the reader publishes its status once the port is open
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("sensor-reader did not start")
        time.sleep(0.02)
    start = mp.Event()
    w = mp.Process(target=_writer, args=(master, data, start))
    w.start()
    t0 = time.perf_counter()
    start.set()
    w.join()
    # Done when every row is in the session's batch files (committed or being written): their total size
    # is known in advance (fixed-width host time and sample time + the line, plus one header per batch).
    # Only stat() here.
    session = next(session_dirs(data_dir))
    per_batch_header = len(b"host_time,sample_time,seq," + b",".join(b"ch%d" % i for i in range(1, 9)) + b"\n")
    expected = len(data) + lines * len(b"2026-01-01T00:00:00.000000Z,1795989061123456,")
    expected += -(-lines // 60_000) * per_batch_header
    deadline = time.monotonic() + 60
    while sum(p.stat().st_size for p in session.iterdir() if p.name.startswith("batch-")) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("sensor-reader did not write every line in time")
        time.sleep(0.002)
    dt = time.perf_counter() - t0
    proc.send_signal(signal.SIGTERM)
    _, code, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(code)
    os.close(master)
    os.close(slave)
    sess = next(session_dirs(data_dir))
    m = SessionManifest.load(sess)
    if m.lines != lines or sum(1 for _ in committed_batches(sess)) != m.batches:
        raise RuntimeError(f"pipeline lost lines: {m.lines} of {lines}")
    return dt, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    """Print raw vs pipeline throughput and their ratio (best of alternating rounds, so load hits both)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    data = make_data(args.lines)
    mb = len(data) / 1e6
    sink = Sink()
    raws, pipes, cpus = [], [], []
    for _ in range(args.rounds):
        raws.append(raw_read(data))
        with tempfile.TemporaryDirectory() as tmp:
            pipe, cpu = pipeline(data, args.lines, Path(tmp), sink)
        pipes.append(pipe)
        cpus.append(cpu)
    raw, pipe, cpu = min(raws), min(pipes), min(cpus)
    print(f"reader: {args.lines} lines, {mb:.1f} MB, 8 channels + counter, one pty, best of {args.rounds} rounds")
    print(f"  raw os.read          {mb / raw:8.1f} MB/s")
    print(f"  full pipeline        {mb / pipe:8.1f} MB/s   ({args.lines / pipe / 1e3:.0f} k lines/s)")
    print(f"  ratio                {raw / pipe:8.2f}x   (target >= 0.30, and >= 10 MB/s)")
    print(f"  CPU s per M lines    {cpu / args.lines * 1e6:8.2f}   (reader process, all threads)")
    print(f"  MB per CPU second    {mb / cpu:8.1f}")
    print(f"  stream frames sent   {sink.frames:8d}   ({sink.bytes / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
