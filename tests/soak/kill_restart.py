"""Soak: kill -9 the reader at random moments while a UART-like monitor trickles its lines; account for each line.

The monitor (the simulator on a real pty) writes its lines in 5-40 byte pieces, so a kill often leaves the
next reader starting in the middle of a line. Three devices: ``counter`` (a counter column, reader told with
--seq), ``hidden`` (a counter column the reader is not told about: the issue's torn "94,-0.6114,..." row) and
``none`` (no counter at all). Every committed row is checked against what was sent::

    python -m tests.soak.kill_restart --rounds 1000 --max-minutes 60 --mode counter --mode none
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kernel.batch import read_batch_rows
from kernel.layout import REJECTS_NAME, committed_batches, session_dirs, status_path
from kernel.manifest import SessionManifest
from simulator import Simulator

READER = str(Path(sys.executable).with_name("sensor-reader"))
MODES = ("counter", "hidden", "none")


@dataclasses.dataclass
class Figures:
    """What happened to every line sent during a soak."""

    mode: str
    rounds: int = 0
    sent: int = 0
    committed: int = 0
    corrupt: int = 0  # committed rows that are not exactly a line that was sent
    duplicates: int = 0  # rows committed more than once
    rejects: dict[str, int] = dataclasses.field(default_factory=dict)  # by reason, from rejects.txt
    lost: dict[str, int] = dataclasses.field(default_factory=dict)  # by cause, as session.json counted them
    missing: int = 0  # lines sent but not committed (ground truth)
    first_line_rejects: int = 0  # ... of which kept in rejects.txt as "partial line at start" (whole or torn)
    uncounted: int = 0  # ... of which no counter of the reader's records (died with a killed reader, no counter)
    seconds: float = 0.0

    def summary(self) -> str:
        """One paragraph of figures."""
        return (f"{self.mode}: {self.rounds} kill -9 rounds in {self.seconds:.0f} s; {self.sent} lines sent, "
                f"{self.committed} committed; corrupt {self.corrupt}, duplicates {self.duplicates}; "
                f"missing {self.missing} = lost by cause {self.lost or {}} + first lines kept as rejects "
                f"{self.first_line_rejects} + uncounted {self.uncounted}; rejects by reason {self.rejects}")


def _start_reader(link: Path, data: Path, seq: bool, log: Path) -> subprocess.Popen:
    args = [READER, "--port", str(link), "--data-dir", str(data), "--local", "--batch-lines", "250",
            "--log-level", "WARNING"] + (["--seq"] if seq else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}
    with open(log, "ab") as err:
        return subprocess.Popen(args, env=env, stderr=err)


def _status(data: Path, device: str) -> dict:
    try:
        return json.loads(status_path(data, f"reader-{device}").read_bytes())
    except (OSError, ValueError):
        return {}


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def soak(workdir: Path, mode: str, rounds: int, max_seconds: float, seed: int = 1, rate: float = 2000.0) -> Figures:
    """Run up to ``rounds`` kill -9 rounds (at most ``max_seconds``), then one clean stop; return the figures."""
    rng = random.Random(seed)
    link, data, log = workdir / f"uart-{mode}", workdir / f"data-{mode}", workdir / f"reader-{mode}.log"
    figures = Figures(mode)
    t0 = time.monotonic()
    # "mixed" (ECG, a 0.37 Hz sine, ECG, each with noise): lines practically never repeat, even without a counter
    sim = Simulator(link, channels=3, rate=rate, waveform="mixed", freq=0.37, seq=mode != "none", seed=seed,
                    pieces=(5, 40), keep_sent=True).start()
    try:
        last_session = None
        while figures.rounds < rounds + 1:
            final = figures.rounds == rounds or time.monotonic() - t0 > max_seconds
            proc = _start_reader(link, data, mode == "counter", log)
            try:
                last_session = _wait_new_session(data, link.name, last_session)
                if final:
                    sim.pause()
                    if not sim.wait_drained(30):
                        raise RuntimeError("the reader did not take what was sent")
                    _wait(lambda: _settled(data, link.name), 30, "the last lines")
                    proc.send_signal(signal.SIGTERM)
                    if proc.wait(60) != 0:
                        raise RuntimeError(f"reader exit code {proc.returncode}")
                    break
                if not sim.wait_sent(sim.sent_count + rng.randint(20, 800), 30):
                    raise RuntimeError("the simulator stalled")
                proc.kill()
                proc.wait(10)
                figures.rounds += 1
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
        sent = sim.sent
    finally:
        sim.stop()
    _account(figures, data, sent)
    figures.seconds = time.monotonic() - t0
    return figures


def _wait_new_session(data: Path, device: str, last: str | None) -> str:
    """Wait until the reader records a session other than ``last``; returns its id."""
    deadline = time.monotonic() + 30
    while True:
        st = _status(data, device)
        if st.get("connected") and st.get("session") != last:
            return st["session"]
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for the reader to record")
        time.sleep(0.01)


def _settled(data: Path, device: str) -> bool:
    """The status' line count stopped moving (two reads a status period apart agree)."""
    before = _status(data, device).get("lines")
    time.sleep(1.1)
    return before == _status(data, device).get("lines")


def _account(f: Figures, data: Path, sent: list[str]) -> None:
    """Compare every committed row and reject with what was sent (as multisets: a line may repeat)."""
    f.sent = len(sent)
    wanted = collections.Counter(sent)
    got: collections.Counter[str] = collections.Counter()
    first_lines: list[bytes] = []
    for session in session_dirs(data):
        m = SessionManifest.load(session)
        for cause, n in getattr(m, "lost", {}).items():  # (older readers: no "lost")
            f.lost[cause] = f.lost.get(cause, 0) + n
        for batch in committed_batches(session):
            got.update(",".join(row[2:]) for row in read_batch_rows(batch)[1])
        rejects = session / REJECTS_NAME
        for record in rejects.read_bytes().splitlines() if rejects.exists() else []:
            _, reason, raw = record.split(b"\t", 2)
            f.rejects[reason.decode()] = f.rejects.get(reason.decode(), 0) + 1
            if reason == b"partial line at start":
                first_lines.append(raw)
    f.corrupt = sum(n for line, n in got.items() if line not in wanted)
    f.duplicates = sum(n - wanted[line] for line, n in got.items() if line in wanted and n > wanted[line])
    f.committed = sum(got.values())
    f.missing = sum(n - got[line] for line, n in wanted.items() if n > got[line])
    f.first_line_rejects = len(first_lines)
    counted = sum(f.lost.values())
    if f.mode == "counter":  # the counter gap includes the line whose torn tail is a reject
        f.uncounted = f.missing - counted
    else:
        f.uncounted = f.missing - counted - f.first_line_rejects


def main(argv: list[str] | None = None) -> int:
    """Run the soak for each mode and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1000, help="kill -9 rounds per mode (default 1000)")
    ap.add_argument("--max-minutes", type=float, default=60.0, help="time limit per mode (default 60)")
    ap.add_argument("--mode", action="append", choices=MODES, help="device kind (repeatable; default all)")
    ap.add_argument("--rate", type=float, default=2000.0, help="lines per second (default 2000)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.max_minutes <= 0:
        print("kill_restart: --rounds must be >= 1 and --max-minutes > 0", file=sys.stderr)
        return 2
    bad = 0
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        for mode in args.mode or MODES:
            f = soak(Path(tmp), mode, args.rounds, args.max_minutes * 60, args.seed, args.rate)
            print(f.summary(), flush=True)
            bad += f.corrupt + f.duplicates
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
