"""Uploader latency: commit of a batch → its object verified in S3, with the inotify trigger and polling only.

Run: ``python -m bench.uploader_latency [--batches 50] [--every 0.3] [--interval 10]``. The real
``sensor-uploader --foreground`` runs against ``rclone serve s3``; once it is idle, batches (1 s at 1 kHz,
4 channels + seq) are committed one at a time with the kernel's atomic commit, as the reader does. Each
latency runs from the commit (rename and folder fsync done) to the uploader's verified marker for that
batch (written after the PUT and the verifying HEAD). Both modes in one run: ``SENSOR_UPLOAD_WATCH=1``
(the default) and ``SENSOR_UPLOAD_WATCH=0`` (poll every ``--interval`` s only).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from kernel.atomic import write_atomic
from kernel.layout import batch_filename
from kernel.manifest import SessionManifest
from kernel.status import read_statuses, uploader_status
from kernel.upload_state import uploaded_path
from tests.fixtures.s3 import S3Server, running_s3
from tests.uploader.daemon_helpers import start, stop, uploader_args, uploader_env, wait_for
from tests.uploader.sessions import T0, batch_bytes, make_session

ROWS, RATE = 1000, 1000.0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class Arrivals:
    """Watches for each committed batch's verified marker and records when it appeared."""

    def __init__(self) -> None:
        self.pending: dict[Path, float] = {}
        self.latencies: list[float] = []
        self.slowest: tuple[float, str] = (0.0, "")
        self.lock = threading.Lock()
        self.done = threading.Event()

    def committed(self, batch: Path, at: float) -> None:
        """A batch was committed at monotonic time ``at``."""
        with self.lock:
            self.pending[batch] = at

    def run(self) -> None:
        """Poll the markers every 2 ms until told to end."""
        while not self.done.is_set():
            now = time.monotonic()
            with self.lock:
                for batch, at in list(self.pending.items()):
                    if uploaded_path(batch).exists():
                        self.latencies.append(now - at)
                        self.slowest = max(self.slowest, (now - at, batch.name))
                        del self.pending[batch]
            time.sleep(0.002)


def measure(server: S3Server, bucket: str, base: Path, watch: bool, args: argparse.Namespace) -> Arrivals:
    """Latencies of ``args.batches`` commits with the trigger on or off."""
    data = base / f"data-{int(watch)}"
    sdir = make_session(data, "dev1", T0, batches=0, rows=ROWS, closed=False)
    extra = ("--foreground", "--interval", str(args.interval), "--prefix", f"watch{int(watch)}")
    env = uploader_env(server, SENSOR_UPLOAD_WATCH="1" if watch else "0", SENSOR_UPLOAD_PROGRESS="off")
    proc = start(uploader_args(server, bucket, data, *extra), env, base / f"uploader-{int(watch)}.log")
    arrivals = Arrivals()
    watcher = threading.Thread(target=arrivals.run, daemon=True)
    try:
        wait_for(lambda: _idle(data), 120, "the uploader to be idle", interval=0.05)
        watcher.start()
        manifest = SessionManifest.load(sdir)
        for n in range(1, args.batches + 1):
            body = batch_bytes(manifest.columns, T0 + timedelta(seconds=n), ROWS, RATE, (n - 1) * ROWS, n)
            batch = sdir / batch_filename(n)
            write_atomic(batch, body)  # the reader's commit: temp, fsync, rename, fsync the folder
            arrivals.committed(batch, time.monotonic())
            manifest.batches, manifest.lines = n, manifest.lines + ROWS
            manifest.save(sdir)  # as the reader does after each batch
            time.sleep(args.every)  # the commit rate under test, not a synchronisation
        deadline = args.interval * 3 + 60
        wait_for(lambda: len(arrivals.latencies) == args.batches, deadline, "every batch", interval=0.05)
    finally:
        arrivals.done.set()
        if proc.poll() is None:
            try:
                stop(proc)
            except subprocess.TimeoutExpired:
                proc.kill()
    return arrivals


def _idle(data: Path) -> bool:
    """The uploader's first pass is over and it waits."""
    status = uploader_status(read_statuses(data))
    return status is not None and status.state == "idle"


def main(argv: list[str] | None = None) -> None:
    """Measure both modes in one run and print p50/p99."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--every", type=float, default=0.3, help="seconds between commits")
    ap.add_argument("--interval", type=float, default=10.0, help="the uploader's poll interval")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        base = Path(tmp)
        with running_s3(base / "s3", key_prefix="benchaccess") as server:
            bucket = server.create_bucket("bench")
            results = {watch: measure(server, bucket, base, watch, args) for watch in (True, False)}
    print(
        f"commit → verified object, {args.batches} batches committed every {args.every:g} s "
        f"(1 s at 1 kHz each, parquet), rclone serve s3 on loopback:"
    )
    for watch, label in ((True, "inotify trigger (SENSOR_UPLOAD_WATCH=1)"),
                         (False, f"poll only (SENSOR_UPLOAD_WATCH=0, every {args.interval:g} s)")):
        got = results[watch].latencies
        print(
            f"  {label:<46} p50 {percentile(got, 50):6.3f} s   p99 {percentile(got, 99):6.3f} s   "
            f"max {max(got):6.3f} s ({results[watch].slowest[1]})"
        )


if __name__ == "__main__":
    main()
