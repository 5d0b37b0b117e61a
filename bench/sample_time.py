"""Sample-time accuracy on a busy host: the reader's host times and its sample clock against the true times.

The simulator emits 8-channel lines at 1 kHz on a pty, delivered in USB-like bursts (a latency timer), and
logs its true emission schedule; both cores are kept busy by other processes the whole time. Every
recorded sample's host time and modelled sample time are compared with the time it was emitted, and
the analysis counts time gaps where none exist (the counter has none and the device never paused).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from analysis.gaps import gap_report, time_gaps
from analysis.loading import load
from analysis.settings import AnalysisSettings
from kernel.batch import SAMPLE_TIME_COLUMN, SEQ_COLUMN, TIME_COLUMN, read_batch_table
from kernel.layout import committed_batches, session_dirs
from kernel.manifest import SessionManifest
from simulator.truth import read_truth, true_times


def _busy(stop: mp.Event) -> None:
    """Keep one core busy (pure Python arithmetic) until told to stop."""
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).with_name(name))


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def record(workdir: Path, seconds: float, burst_ms: float, busy: int, nominal: float) -> Path:
    """Run simulator, reader and busy processes; return the recorded session folder."""
    link, truth, data = workdir / "sim0", workdir / "truth.jsonl", workdir / "data"
    # The simulator stands in for hardware, whose clock a busy host cannot delay: real-time priority.
    rt = ["chrt", "-f", "50"] if shutil.which("chrt") and os.geteuid() == 0 else []
    sim = subprocess.Popen([*rt, _exe("sensor-sim"), "--link", str(link), "--rate", "1000", "--channels", "8", "--seq",
                            "--burst-ms", str(burst_ms), "--truth", str(truth), "--log-level", "WARNING"])
    stop = mp.Event()
    hogs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(busy)]
    reader = None
    try:
        _wait(link.exists, 10, "the simulator's pty")
        args = [_exe("sensor-reader"), "--port", str(link), "--data-dir", str(data), "--local", "--seq",
                "--log-level", "WARNING"]
        if nominal:
            args += ["--sample-rate", str(nominal)]
        reader = subprocess.Popen(args)
        _wait(lambda: any(session_dirs(data)) if data.is_dir() else False, 20, "the reader's session")
        for h in hogs:
            h.start()
        time.sleep(seconds)  # the measurement itself: a fixed recording length
    finally:
        stop.set()
        for h in hogs:
            h.join(10)
        sim.send_signal(signal.SIGTERM)
        sim.wait(30)
        if reader is not None:
            time.sleep(0.5)  # the last burst reaches the reader before it stops
            reader.send_signal(signal.SIGTERM)
            reader.wait(60)
    return next(session_dirs(data))


def _pct(x: np.ndarray) -> str:
    p50, p99 = np.percentile(x, [50, 99])
    return f"p50 {p50 * 1e3:8.3f}  p99 {p99 * 1e3:8.3f}  max {x.max() * 1e3:8.3f} ms"


def main(argv: list[str] | None = None) -> None:
    """Print per-sample time errors (host vs modelled) and false time gaps."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0, help="recording length (default 60)")
    ap.add_argument("--burst-ms", type=float, default=16.0, help="adapter latency timer, ms (default 16)")
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes (default: one per core)")
    ap.add_argument("--sample-rate", type=float, default=0.0, help="tell the reader the nominal rate (0: estimate)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        session = record(work, args.seconds, args.burst_ms, args.busy, args.sample_rate)
        table = pa.concat_tables([read_batch_table(b) for b in committed_batches(session)])
        seqs = table.column(SEQ_COLUMN).to_numpy()
        truth = np.array(true_times(read_truth(work / "truth.jsonl"), seqs.tolist()))
        host = table.column(TIME_COLUMN).cast(pa.int64()).to_numpy() / 1e6 - truth
        model = table.column(SAMPLE_TIME_COLUMN).cast(pa.int64()).to_numpy() / 1e6 - truth
        settle = seqs >= seqs[0] + 2000  # after the first 2 s (the model starting from nothing)
        sample_frame = load(session)
        report = gap_report(sample_frame)
        host_frame = load(session, settings=AnalysisSettings(time_axis="host"))
        host_rule = time_gaps(host_frame.drop(columns=SEQ_COLUMN))  # every host-time jump, as before
        m = SessionManifest.load(session)
    q = m.clock_quality
    print(f"sample time: {len(seqs)} samples, 1 kHz x 8 ch, {args.seconds:.0f} s, {args.busy} busy processes, "
          f"USB-like bursts every {args.burst_ms:g} ms, nominal rate {'given' if args.sample_rate else 'estimated'}")
    print(f"  host receive time  error  {_pct(np.abs(host))}")
    print(f"  modelled time      error  {_pct(np.abs(model))}   (goal p99 <= 1 ms)")
    print(f"  modelled, after 2 s       {_pct(np.abs(model[settle]))}")
    print(f"  p99 ratio host/model      {np.percentile(np.abs(host), 99) / np.percentile(np.abs(model), 99):8.1f}x")
    print(f"  counter gaps              {0 if report.seq is None else len(report.seq):8d}   (missing samples: "
          f"{report.missing})")
    print(f"  false time gaps           {len(report.time):8d}   (goal 0; sample time, counter-checked)")
    print(f"  host-time jumps > 5 steps {len(host_rule):8d}   (what host times alone would report)")
    if q is not None:
        print(f"  clock model: {q.rate_hz} Hz, drift {q.drift_ppm} ppm, segments {q.segments}, restarts "
              f"{q.restarts or 'none'}, reads late p99 {q.delay_ms.get('p99')} ms, NTP {m.ntp_synchronized}")


if __name__ == "__main__":
    main()
