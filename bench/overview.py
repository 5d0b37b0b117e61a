"""Benchmark of the day overview: ``sensor-analysis overview`` of 24 h at 8 ch x 1 kHz, as a CLI process.

Run: ``python -m bench.overview`` (or ``main()``). Builds a closed session of 24 h as committed 60 s batches
(1 440 batches of 60 000 lines, the reader's defaults) with the uploader's staged state, publishes it the
way the uploader does (its publish step writes and uploads the session envelope, then the manifest) to a
real S3 server (rclone), and times, in the same run, the overview command as a separate process from the
disk and from S3: from the stored envelope (what ``overview`` does now) and from the samples
(``--from-samples``, the previous path). Goal: <= 3 s from storage, start-up of the process included.

To keep generation short, only ``--distinct`` minutes (default 10) are processed by the uploader's
``process_batch``; the other batches are those bytes with their host times moved by whole minutes (a
text replacement in the CSV, a shift of the bins in the batch's envelope), so every batch on disk is a
real, distinct minute of the day. On S3 the batch objects of the other minutes reuse the processed
minutes' Parquet bytes under their own names: the envelope path never reads them, the samples path reads
the same number of bytes as with distinct objects.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa

from analysis.synthetic import batch_csv_bytes, synth_frame
from kernel.atomic import write_atomic
from kernel.batch import format_time, parse_time
from kernel.envelope import BIN_COLUMN, read_envelope, to_bytes
from kernel.layout import batch_filename, batch_stem, envelope_path, session_id_at
from kernel.manifest import END_STOPPED, STATE_CLOSED, SessionManifest
from kernel.objects import CONTENT_TYPES, PARQUET, UploadedBatch, batch_object_name, manifest_key, object_key
from kernel.upload_state import ProcessedBatch, envelope_file, staging_dir
from tests.fixtures.s3 import running_s3
from uploader.convert import digests, process_batch
from uploader.envelope import publish_envelope
from uploader.manifest import session_document
from uploader.s3 import S3Store
from uploader.settings import Settings

START = "2026-11-25T00:00:00Z"
RATE = 1000.0
CHANNELS = 8
BATCH_SECONDS = 60  # 60 000 lines at 1 kHz: the reader's default batch
DEVICE, BOX, BUCKET, PREFIX = "bench0", "box0", "bench", "rec"


@dataclasses.dataclass
class Day:
    """The generated session and what its publication needs."""

    session: Path
    entries: list[UploadedBatch]
    objects: list[bytes]  # the Parquet object of each batch (shared bytes beyond the distinct minutes)
    manifest: SessionManifest
    process_s: float  # the uploader's process_batch of the distinct minutes
    csv_bytes: int


def _shift(text: str, minutes: int) -> str:
    """A batch time moved by whole minutes."""
    return format_time(parse_time(text) + _minutes(minutes))


def _minutes(n: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)


def make_day(tmp: Path, hours: int, distinct: int) -> Day:
    """Write the session (committed batches, staged envelopes, closed manifest) and the objects to upload."""
    if 60 % distinct:
        raise SystemExit("--distinct must divide 60")
    frame = synth_frame(START, RATE, distinct * BATCH_SECONDS, CHANNELS, seed=5)
    session = tmp / "data" / DEVICE / session_id_at(frame.index[0].to_pydatetime())
    staging = staging_dir(session)
    templates: list[tuple[bytes, ProcessedBatch, bytes, pa.Table]] = []
    process_s = 0.0
    work = tmp / "templates" / DEVICE / session.name
    work.mkdir(parents=True)
    for i in range(distinct):
        rows = frame.iloc[i * BATCH_SECONDS * int(RATE) : (i + 1) * BATCH_SECONDS * int(RATE)]
        path = work / batch_filename(i + 1)
        path.write_bytes(batch_csv_bytes(rows))
        t0 = time.perf_counter()
        info = process_batch(str(path), PARQUET, str(staging_dir(work)))
        process_s += time.perf_counter() - t0
        if not isinstance(info, ProcessedBatch):
            raise RuntimeError(f"processing failed: {info}")  # noqa: TRY004 - a failure result, not a bad type
        env = read_envelope(envelope_file(staging_dir(work), batch_stem(path)))
        templates.append((path.read_bytes(), info, Path(info.object_file).read_bytes(), env))
    staging.mkdir(parents=True)
    entries, objects, size = [], [], 0
    session_prefix = object_key(PREFIX, BOX, DEVICE, session.name)
    for k in range(hours * 60):
        data, info, obj, env = templates[k % distinct]
        shift = k - k % distinct
        hh, mm = divmod(k, 60)
        data = data.replace(b"T00:%02d:" % (k % distinct), b"T%02d:%02d:" % (hh, mm))
        name = batch_filename(k + 1)
        write_atomic(session / name, data, durable=False)
        size += len(data)
        bins = env.column(BIN_COLUMN).cast("int64").to_numpy() + shift * 60_000_000
        env = env.set_column(0, BIN_COLUMN, pa.array(bins).cast(env.schema.field(0).type))
        write_atomic(envelope_file(staging, batch_stem(name)), to_bytes(env), durable=False)
        assert info.stats is not None
        stats = dataclasses.replace(
            info.stats,
            first_time=_shift(info.stats.first_time or "", shift),
            last_time=_shift(info.stats.last_time or "", shift),
        )
        sha, _ = digests(data)
        key = object_key(session_prefix, "", "", "", batch_object_name(batch_stem(name), PARQUET))
        entries.append(UploadedBatch(name, key, PARQUET, sha, len(data), info.object_sha256, info.object_size,
                                     True, stats))
        objects.append(obj)
    manifest = SessionManifest(
        device_id=DEVICE, session_id=session.name, port="/dev/bench0", baudrate=921600,
        columns=list(frame.columns), started_at=format_time(frame.index[0].to_pydatetime()),
        software_version="bench", lines=len(frame) * hours * 60 // distinct, batches=hours * 60,
        state=STATE_CLOSED, end_reason=END_STOPPED, ended_at=entries[-1].stats.last_time if entries[-1].stats else None,
    )
    manifest.save(session)
    return Day(session, entries, objects, manifest, process_s, size)


def publish(day: Day, store: S3Store) -> tuple[float, float]:
    """Upload the batch objects, then publish as the uploader does: envelope first, manifest last.

    Returns (seconds of the uploader's envelope step, seconds of the object uploads).
    """
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda eo: store.client.put_object(Bucket=BUCKET, Key=eo[0].key, Body=eo[1],
                                                         ContentType=CONTENT_TYPES[PARQUET]),
                      zip(day.entries, day.objects, strict=True)))
    upload_s = time.perf_counter() - t0
    session_prefix = object_key(PREFIX, BOX, DEVICE, day.session.name)
    t0 = time.perf_counter()
    publish_envelope(store, session_prefix, BOX, day.session)
    envelope_s = time.perf_counter() - t0
    doc = session_document(day.manifest, BOX, day.entries)
    sha, md5 = digests(doc)
    store.put_verified(manifest_key(session_prefix), doc, len(doc), sha, md5, "application/json", {})
    return envelope_s, upload_s


@dataclasses.dataclass(frozen=True)
class Timing:
    """One run of the command: wall seconds, and CPU seconds of the process (less sensitive to a busy host)."""

    wall: float
    cpu: float


def overview_process(source: str, out: Path, env: dict[str, str], *extra: str) -> Timing:
    """``sensor-analysis overview SOURCE`` as a new process (start-up and imports included)."""
    argv = [sys.executable, "-m", "analysis.cli", "overview", source, "--out", str(out), "--no-progress", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(seconds, cpu)


def best(runs: list[Timing]) -> Timing:
    """The least disturbed run (the host is shared)."""
    return min(runs, key=lambda t: t.wall)


def main(argv: list[str] | None = None) -> int:
    """Generate, publish, time and print."""
    p = argparse.ArgumentParser(
        prog="bench.overview", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--hours", type=int, default=24, help="length of the session (default 24)")
    p.add_argument("--distinct", type=int, default=10, help="minutes processed by the uploader (default 10)")
    p.add_argument("--repeat", type=int, default=3, help="runs of the envelope path, best kept (default 3)")
    p.add_argument("--no-samples", action="store_true", help="skip the (slow) timings of the samples path")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-overview-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        day = make_day(tmp, args.hours, args.distinct)
        gen_s = time.perf_counter() - t0
        with running_s3(tmp / "s3", key_prefix="bench") as server:
            bucket = server.create_bucket(BUCKET)
            assert bucket == BUCKET
            settings = Settings(data_dir=tmp / "data", bucket=BUCKET, endpoint_url=server.endpoint_url,
                                box_id=BOX, prefix=PREFIX)
            store = S3Store(settings, client=server.client())
            envelope_s, upload_s = publish(day, store)
            env = {**os.environ, **server.env(), "SENSOR_S3_ENDPOINT_URL": server.endpoint_url}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                              os.environ.get("PYTHONPATH")]))
            url = f"s3://{BUCKET}/{object_key(PREFIX, BOX, DEVICE, day.session.name)}"
            sources = {"disk (CSV batches)": str(day.session), "S3 (Parquet objects)": url}
            rows = []
            for label, source in sources.items():
                fast = best([overview_process(source, tmp / "new.png", env) for _ in range(args.repeat)])
                slow = None if args.no_samples else overview_process(source, tmp / "old.png", env, "--from-samples")
                rows.append((label, fast, slow))
        env_kb = envelope_path(day.session).stat().st_size / 1e3
    n = args.hours * 60
    print(f"Overview of {args.hours} h, {CHANNELS} ch x {RATE:g} Hz ({n} batches, {day.csv_bytes / 1e9:.1f} GB of CSV), "
          "`sensor-analysis overview` as a new process, start-up included; goal <= 3 s")
    print(f"  generated in {gen_s:.0f} s ({args.distinct} minutes through process_batch: "
          f"{day.process_s / args.distinct:.2f} s per batch, envelope included); objects uploaded in {upload_s:.0f} s")
    print(f"  publish step (combine {n} batch envelopes, write, upload): {envelope_s:.2f} s; "
          f"session envelope {env_kb:.0f} kB")
    print(f"  {'source':<22} {'envelope wall (cpu)':>20} {'samples wall (cpu)':>20} {'speedup':>8}  verdict")
    for label, fast, slow in rows:
        ratio = f"{slow.wall / fast.wall:7.1f}x" if slow else "      -"
        slow_s = f"{slow.wall:8.2f} s ({slow.cpu:5.1f})" if slow else f"{'-':>20}"
        verdict = "ok" if fast.wall <= 3 else "ABOVE GOAL"
        print(f"  {label:<22} {fast.wall:8.2f} s ({fast.cpu:5.1f}) {slow_s} {ratio}  {verdict}")
    print(f"  (load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
