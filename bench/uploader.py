"""Uploader benchmark, one run: memory during a catch-up, commit → verified latency, paced-link ratios against
``rclone copy``, CPU per batch on loopback. All against ``rclone serve s3`` on this machine.

Run: ``python -m bench uploader`` or ``python -m bench.uploader [--skip memory,latency,link,cpu]``.

* memory: the real ``sensor-uploader --foreground`` catches up a backlog of ``--backlog`` batches (8 ch +
  seq at 1 kHz, ``--backlog-seconds`` each: smaller than the reader's minute-long batches, to keep the run
  in minutes); the PSS of its process and all its descendants (``/proc/<pid>/smaps_rollup``) is sampled
  every 0.1 s and the peak reported, with the RSS peak (PSS shares library pages with other processes
  mapping the same files, fewer on a box than on a busy development machine).
* latency: a fresh daemon, once idle, gets batches committed one at a time (the reader's atomic commit);
  each latency runs from the commit to the batch's verified marker (after PUT and HEAD). Inotify trigger
  and poll-only mode.
* link: a paced proxy (bench/link.py, its own process) with added round-trip time. Each timed uploader run
  is a whole pass from committed batches to verified objects and published manifest (scan, validate,
  stats, sha256/MD5, convert, PUT, HEAD) with a new client and pool (built before the clock starts, as the
  daemon builds them at start-up) and no connection open, as ``rclone copy`` starts; one untimed round of
  each first, then interleaved rounds, first runner alternating; the median
  per-round ratio is shown (> 1: the uploader is faster).
* cpu: the same runs on loopback, client CPU seconds per batch (the S3 server's excluded).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

from kernel.atomic import write_atomic
from kernel.layout import batch_filename, committed_batches, is_touched
from kernel.manifest import SessionManifest
from kernel.status import read_statuses, uploader_status
from kernel.upload_state import uploaded_path
from tests.fixtures.s3 import S3Server, rclone_binary, running_s3
from tests.uploader.daemon_helpers import start, stop, uploader_args, uploader_env, wait_for
from tests.uploader.sessions import T0, batch_bytes, make_session
from uploader.pipeline import Pipeline
from uploader.settings import Settings, validate
from uploader.state import plan, scan

PARTS = ("memory", "latency", "link", "cpu")


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def tree(root: int) -> set[int]:
    """A process and its live descendants."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parent.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def memory_mb(pids: set[int]) -> tuple[float, float]:
    """Summed (PSS, RSS) of the processes, MB."""
    total = {"Pss:": 0, "Rss:": 0}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Pss:", "Rss:")):
                    total[line.split()[0]] += int(line.split()[1])
        except OSError:
            continue
    return total["Pss:"] / 1024, total["Rss:"] / 1024


def rclone_copy(
    server: S3Server, src: Path, bucket: str, prefix: str, transfers: int, endpoint: str
) -> float:
    """Seconds for ``rclone copy`` of a session's batch files (env-configured remote, no config file)."""
    env = {
        **os.environ,
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Rclone",
        "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint,
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": server.access_key,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": server.secret_key,
        "RCLONE_CONFIG_BENCH_REGION": "us-east-1",
    }
    args = [
        rclone_binary(),
        "copy",
        str(src),
        f"bench:{bucket}/{prefix}",
        "--include",
        "batch-*.csv",
        "--transfers",
        str(transfers),
        "--config",
        "/dev/null",
    ]
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True, timeout=900)
    return time.perf_counter() - started


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (the rclone clients)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def own_cpu() -> float:
    """CPU seconds of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- memory during a catch-up ---------------------------------------------------------------------


def catch_up(server: S3Server, bucket: str, base: Path, args: argparse.Namespace) -> str:
    """Run the daemon over a backlog, sampling its PSS; the report line."""
    data = base / "catchup"
    per = args.backlog // 4
    sessions = [
        make_session(
            data,
            f"dev{i}",
            T0 + timedelta(hours=i),
            batches=per,
            rows=int(args.backlog_seconds * 1000),
            channels=8,
        )
        for i in range(4)
    ]
    size = sum(b.stat().st_size for s in sessions for b in committed_batches(s))
    os.sync()
    extra = ("--foreground", "--prefix", "catchup", "--workers", "2", "--interval", "5")
    proc = start(
        uploader_args(server, bucket, data, *extra),
        uploader_env(server, SENSOR_UPLOAD_PROGRESS="off"),
        base / "catchup.log",
    )
    peak, rss, seen, started = 0.0, 0.0, set(), time.monotonic()
    try:
        while not all(is_touched(s) for s in sessions):
            if proc.poll() is not None or time.monotonic() - started > 900:
                raise SystemExit(f"catch-up failed: {(base / 'catchup.log').read_text()[-2000:]}")
            pids = tree(proc.pid)
            seen |= pids
            pss_now, rss_now = memory_mb(pids)
            peak, rss = max(peak, pss_now), max(rss, rss_now)
            time.sleep(0.1)
        took = time.monotonic() - started
        idle = memory_mb(tree(proc.pid))[0]
    finally:
        stop(proc)
    return (
        f"catch-up of {per * 4} batches ({size / 1e6:.0f} MB CSV, {size / per / 4e3:.0f} kB each, parquet) "
        f"in {took:.1f} s: PSS peak {peak:.0f} MB (RSS peak {rss:.0f} MB), after it {idle:.0f} MB, "
        f"{len(seen)} process(es) "
        f"[target <= 120 MB]"
    )


# --- commit → verified latency --------------------------------------------------------------------


def latencies(
    server: S3Server, bucket: str, base: Path, watch: bool, args: argparse.Namespace
) -> list[float]:
    """Seconds from each commit to its verified marker, ``args.commits`` batches, trigger on or off."""
    data = base / f"latency-{int(watch)}"
    sdir = make_session(data, "dev1", T0, batches=0, closed=False)
    extra = (
        "--foreground",
        "--interval",
        str(args.interval),
        "--prefix",
        f"latency{int(watch)}",
        "--workers",
        "2",
    )
    env = uploader_env(server, SENSOR_UPLOAD_WATCH="1" if watch else "0", SENSOR_UPLOAD_PROGRESS="off")
    proc = start(uploader_args(server, bucket, data, *extra), env, base / f"latency-{int(watch)}.log")
    pending: dict[Path, float] = {}
    got: list[float] = []
    lock, done = threading.Lock(), threading.Event()

    def arrivals() -> None:
        while not done.is_set():
            now = time.monotonic()
            with lock:
                for batch, at in list(pending.items()):
                    if uploaded_path(batch).exists():
                        got.append(now - at)
                        del pending[batch]
            time.sleep(0.002)

    watcher = threading.Thread(target=arrivals, daemon=True)
    try:
        wait_for(lambda: _idle(data), 120, "the uploader to be idle", interval=0.05)
        watcher.start()
        manifest = SessionManifest.load(sdir)
        for n in range(1, args.commits + 1):
            body = batch_bytes(manifest.columns, T0 + timedelta(seconds=n), 1000, 1000.0, (n - 1) * 1000, n)
            batch = sdir / batch_filename(n)
            write_atomic(batch, body)  # the reader's commit: temp, fsync, rename, fsync the folder
            with lock:
                pending[batch] = time.monotonic()
            manifest.batches, manifest.lines = n, manifest.lines + 1000
            manifest.save(sdir)
            time.sleep(args.every)  # the commit rate under test, not a synchronisation
        wait_for(lambda: len(got) == args.commits, args.interval * 3 + 60, "every batch", interval=0.05)
    finally:
        done.set()
        stop(proc)
    return got


def _idle(data: Path) -> bool:
    """The daemon is warmed up, its first pass over, and it waits."""
    status = uploader_status(read_statuses(data))
    return status is not None and status.state == "idle"


# --- whole passes vs rclone -----------------------------------------------------------------------


class Runs:
    """Fresh copies of one generated session, timed through the uploader or rclone."""

    def __init__(
        self,
        server: S3Server,
        bucket: str,
        base: Path,
        name: str,
        batches: int,
        seconds: float,
        concurrency: int,
    ) -> None:
        self.server, self.bucket, self.base, self.name = server, bucket, base, name
        self.concurrency, self.count = concurrency, 0
        self.source = make_session(
            base / f"{name}-gen", "dev1", T0, batches=batches, rows=int(seconds * 1000), channels=8
        )
        self.batches = batches
        self.bytes = sum(b.stat().st_size for b in committed_batches(self.source))

    def rclone(self, endpoint: str) -> tuple[float, float]:
        """(seconds, client CPU seconds) of ``rclone copy`` to a fresh prefix."""
        self.count += 1
        os.sync()
        c0 = children_cpu()
        secs = rclone_copy(
            self.server,
            self.source,
            self.bucket,
            f"{self.name}-rclone-{self.count}",
            self.concurrency,
            endpoint,
        )
        return secs, children_cpu() - c0

    def uploader(self, endpoint: str, fmt: str) -> tuple[float, float]:
        """(seconds, CPU seconds) of a whole pass over a fresh copy: new client, pool and connections."""
        self.count += 1
        data = self.base / f"{self.name}-{fmt}-{self.count}"
        shutil.copytree(self.source.parent.parent, data)
        os.sync()
        settings = validate(
            Settings(
                data_dir=data,
                bucket=self.bucket,
                endpoint_url=endpoint,
                box_id="bench",
                prefix=f"{self.name}-{self.count}",
                upload_format=fmt,
                workers=2,
                concurrency=self.concurrency,
                once=True,
            )
        )
        pipeline = Pipeline(settings)
        pipeline.warm_up()  # a new client and pool (no connection open yet), as the daemon has at start-up
        c0, started = own_cpu(), time.perf_counter()
        try:
            result = pipeline.run_pass(plan(scan(data), settings.max_batches))
        finally:
            pipeline.close()
        secs, cpu = time.perf_counter() - started, own_cpu() - c0
        if not result.ok or result.uploaded != self.batches:
            raise SystemExit(f"uploader pass failed: {result.errors[:3]}")
        shutil.rmtree(data)
        return secs, cpu

    def compare(self, endpoint: str, rounds: int) -> dict[str, list[tuple[float, float]]]:
        """One untimed round, then interleaved rounds (who goes first alternates): {runner: [(s, cpu)]}."""
        runners = {
            "rclone": lambda: self.rclone(endpoint),
            "csv": lambda: self.uploader(endpoint, "csv"),
            "parquet": lambda: self.uploader(endpoint, "parquet"),
        }
        for run in runners.values():
            run()
        out: dict[str, list[tuple[float, float]]] = {k: [] for k in runners}
        for r in range(rounds):
            for name in list(runners) if r % 2 == 0 else list(reversed(runners)):
                out[name].append(runners[name]())
        return out


def ratios(out: dict[str, list[tuple[float, float]]], fmt: str) -> float:
    """Median over rounds of rclone seconds / uploader seconds."""
    return statistics.median(r[0] / u[0] for r, u in zip(out["rclone"], out[fmt], strict=True))


def main(argv: list[str] | None = None) -> None:
    """Run the parts asked for and print their figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", default="", help=f"comma-separated parts to skip: {', '.join(PARTS)}")
    ap.add_argument("--backlog", type=int, default=1000, help="batches in the catch-up")
    ap.add_argument(
        "--backlog-seconds", type=float, default=1.0, help="seconds of 1 kHz data per catch-up batch"
    )
    ap.add_argument("--commits", type=int, default=50, help="batches committed one by one, per mode")
    ap.add_argument("--every", type=float, default=0.3, help="seconds between commits")
    ap.add_argument("--interval", type=float, default=10.0, help="the daemon's poll interval")
    ap.add_argument("--links", default="10:40,100:40", help="MBIT:RTT_MS pairs of the paced link")
    ap.add_argument(
        "--link-seconds", type=float, default=10.0, help="seconds of 1 kHz data per batch (~1 MB)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds per comparison")
    ap.add_argument("--concurrency", type=int, default=Settings.concurrency, help="= rclone --transfers")
    args = ap.parse_args(argv)
    skip = {p for p in args.skip.split(",") if p}
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-uploader-") as tmp:
        base = Path(tmp)
        with running_s3(base / "s3", key_prefix="benchaccess") as server:
            bucket = server.create_bucket("bench")
            os.environ.update(server.env())
            if "memory" not in skip:
                print("memory: catch-up of a backlog by the daemon ...", flush=True)
                lines.append(catch_up(server, bucket, base, args))
            if "latency" not in skip:
                print("latency: commits one at a time ...", flush=True)
                lines.append(
                    f"commit → verified object, {args.commits} batches committed every {args.every:g} s "
                    "(1 s at 1 kHz, 8 ch, parquet):"
                )
                for watch, label in (
                    (True, "inotify trigger"),
                    (False, f"poll only, every {args.interval:g} s"),
                ):
                    got = latencies(server, bucket, base, watch, args)
                    lines.append(
                        f"  {label:<26} p50 {percentile(got, 50):6.3f} s   p99 {percentile(got, 99):6.3f} s"
                        f"   max {max(got):6.3f} s" + ("   [target p99 < 1 s]" if watch else "")
                    )
            for mbit, rtt in (
                [] if "link" in skip else [map(float, p.split(":")) for p in args.links.split(",")]
            ):
                batches = max(8, round(mbit * 0.6))  # about 5 s of link time per rclone run
                runs = Runs(
                    server, bucket, base, f"link{mbit:g}", batches, args.link_seconds, args.concurrency
                )
                print(f"link: {mbit:g} Mbit/s, {rtt:g} ms RTT, {batches} batches ...", flush=True)
                proxy = subprocess.Popen(
                    [sys.executable, "-m", "bench.link", str(server.port), str(mbit), str(rtt)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                try:
                    assert proxy.stdout is not None
                    out = runs.compare(f"http://127.0.0.1:{proxy.stdout.readline().strip()}", args.rounds)
                finally:
                    assert proxy.stdin is not None
                    proxy.stdin.close()
                    proxy.wait(10)
                med = statistics.median(s for s, _ in out["rclone"])
                lines.append(
                    f"paced link {mbit:g} Mbit/s + {rtt:g} ms RTT, {batches} batches of "
                    f"{runs.bytes / batches / 1e6:.1f} MB CSV, rclone copy median {med:.2f} s; "
                    f"uploader whole pass vs rclone (median of {args.rounds} rounds; > 1 = faster): "
                    f"csv {ratios(out, 'csv'):.2f}x, parquet {ratios(out, 'parquet'):.2f}x  [target >= 1.0]"
                )
            if "cpu" not in skip:
                print("cpu: loopback ...", flush=True)
                runs = Runs(server, bucket, base, "loop", 60, args.link_seconds, args.concurrency)
                out = runs.compare(server.endpoint_url, args.rounds)
                per = {k: statistics.median(c for _, c in v) / runs.batches * 1e3 for k, v in out.items()}
                secs = {k: statistics.median(s for s, _ in v) for k, v in out.items()}
                lines.append(
                    f"loopback, {runs.batches} batches of {runs.bytes / runs.batches / 1e6:.1f} MB, client "
                    f"CPU per batch (median of {args.rounds}): rclone {per['rclone']:.1f} ms, uploader csv "
                    f"{per['csv']:.1f} ms ({per['csv'] / per['rclone']:.2f}x), parquet "
                    f"{per['parquet']:.1f} ms ({per['parquet'] / per['rclone']:.2f}x); wall rclone "
                    f"{secs['rclone']:.2f} s, csv {secs['csv']:.2f} s, parquet {secs['parquet']:.2f} s"
                )
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
