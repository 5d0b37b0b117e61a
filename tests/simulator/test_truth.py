"""The simulator's truth log and USB-like bursts: lines arrive in bursts, their true times are known."""

from __future__ import annotations

import os
import time
import tty

from simulator.truth import TruthSegment, read_truth, true_times


def test_truth_segments_give_each_counter_its_time():
    segs = [TruthSegment(0, 100.0, 1000.0), TruthSegment(500, 101.0, 500.0)]
    assert true_times(segs, [0, 499, 500, 502]) == [100.0, 100.499, 101.0, 101.004]


def test_bursts_and_truth_log(sim_factory, tmp_path):
    truth = tmp_path / "truth.jsonl"
    sim = sim_factory(channels=2, rate=1000, seq=True, burst=0.02, truth=truth)
    fd = os.open(sim.link, os.O_RDONLY | os.O_NOCTTY)
    tty.setraw(fd)
    try:
        os.read(fd, 1 << 16)  # what came before the port was opened
        counts = []
        for _ in range(10):
            counts.append(os.read(fd, 1 << 16).count(b"\n"))
    finally:
        os.close(fd)
    assert sorted(counts)[5] >= 10  # 20 ms of 1 kHz lines per delivery, not one line at a time
    [seg] = read_truth(truth)
    assert seg.first_seq == 0 and seg.rate == 1000.0 and abs(seg.time - time.time()) < 60
