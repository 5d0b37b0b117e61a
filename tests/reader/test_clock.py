"""The sample clock on synthetic arrivals: late reads, drift, a rate change, counter gaps, a reset, a pause."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import pairwise

import pytest

from reader.clock import SampleClock

T0 = 1_800_000_000.0
D = 0.0003  # the smallest transfer delay


def run(
    clock: SampleClock,
    emit: list[tuple[int, float]],
    *,
    burst: float = 0.016,
    late_p: float = 0.05,
    late_max: float = 0.26,
    seed: int = 1,
) -> list[tuple[int, float, float]]:
    """Deliver (counter, true time) samples in reads every ``burst`` s, some reads late by up to ``late_max``;
    returns (counter, true time, dated time) for every sample."""
    rnd = random.Random(seed)
    out: list[tuple[int, float, float]] = []
    i, tick = 0, emit[0][1]
    while i < len(emit):
        tick += burst
        t = tick + D + rnd.expovariate(1 / 0.0003) + (rnd.uniform(0, late_max) if rnd.random() < late_p else 0.0)
        j = i
        while j < len(emit) and emit[j][1] + D <= t:
            j += 1
        if j == i:
            continue
        got = emit[i:j]
        counters = [n for n, _ in got]
        if all(b == a + 1 for a, b in pairwise(counters)):
            first_us, step_us = clock.run(counters[0], len(counters), t)
            dated = [(first_us + k * step_us) / 1e6 for k in range(len(got))]
        else:
            dated = [u / 1e6 for u in clock.times(counters, t)]
        out += [(n, true, d) for (n, true), d in zip(got, dated, strict=True)]
        i = j
        tick = max(tick, t - burst)
    return out


def steady(rate: float, seconds: float, start: float = T0, first: int = 0) -> list[tuple[int, float]]:
    """Samples of a device at ``rate`` Hz from ``start``."""
    return [(first + k, start + k / rate) for k in range(int(rate * seconds))]


def errors(samples: list[tuple[int, float, float]], keep: Callable[[float], bool] = lambda t: t > T0 + 2) -> list[float]:
    """Absolute dating errors (seconds) of the samples whose true time passes ``keep`` (sorted)."""
    return sorted(abs(d - true) for _, true, d in samples if keep(true))


def p99(errs: list[float]) -> float:
    return errs[int(0.99 * (len(errs) - 1))]


@pytest.mark.parametrize("ppm", [100, -100])
def test_late_reads_and_drift(ppm):
    clock = SampleClock(1000.0)
    samples = run(clock, steady(1000 * (1 + ppm * 1e-6), 40))
    errs = errors(samples)
    assert p99(errs) < 0.0005 and errs[-1] < 0.002
    q = clock.quality(None, None)
    assert q.drift_ppm == pytest.approx(ppm, abs=5) and q.segments == 1 and q.restarts == {}
    dated = [d for _, _, d in samples]
    assert all(b > a for a, b in pairwise(dated))  # times only go forward


def test_rate_estimated_without_a_nominal_rate():
    clock = SampleClock(None)
    errs = errors(run(clock, steady(1000.05, 40)), keep=lambda t: t > T0 + 5)
    assert p99(errs) < 0.001
    assert clock.quality(None, None).rate_hz == pytest.approx(1000.05, abs=0.01)


def test_rate_change_restarts_and_settles():
    emit = steady(1000, 20) + steady(500, 20, start=T0 + 20, first=20_000)
    clock = SampleClock(1000.0)
    errs = errors(run(clock, emit), keep=lambda t: t > T0 + 25)
    assert p99(errs) < 0.001
    assert clock.quality(None, None).restarts.get("rate_change", 0) >= 1
    assert clock.quality(None, None).rate_hz == pytest.approx(500, rel=1e-3)


def test_counter_gap_keeps_the_model():
    emit = [s for s in steady(1000, 20) if not 10_000 <= s[0] < 10_100]  # 100 samples lost in transit
    clock = SampleClock(1000.0)
    errs = errors(run(clock, emit))
    assert p99(errs) < 0.0005 and clock.quality(None, None).restarts == {}


def test_counter_reset_restarts():
    emit = steady(1000, 10) + steady(1000, 10, start=T0 + 10.5)  # the device restarted: counter from 0 again
    clock = SampleClock(1000.0)
    samples = run(clock, emit)
    assert clock.quality(None, None).restarts == {"reset": 1}
    assert p99(errors(samples, keep=lambda t: t > T0 + 12.5)) < 0.0005


def test_device_pause_restarts_after_confirmation():
    emit = steady(1000, 10) + steady(1000, 10, start=T0 + 10.3, first=10_000)  # paused 0.3 s, counter went on
    clock = SampleClock(1000.0)
    samples = run(clock, emit, late_p=0.0)
    assert clock.quality(None, None).restarts == {"pause": 1}
    after = errors(samples, keep=lambda t: t > T0 + 10.3 + 0.2)  # after the confirmation window
    assert p99(after) < 0.0005


def test_a_stalled_host_reading_its_backlog_in_pieces_is_no_pause():
    clock = SampleClock(1000.0)
    samples = run(clock, steady(1000, 10), late_p=0.0)  # a calm start: 10 s
    stalled = T0 + 10.3  # then the host stalls 0.3 s and reads the backlog slowly: 40 lines every 20 ms
    backlog = steady(1000, 2, start=T0 + 10, first=10_000)
    for i in range(0, len(backlog), 40):
        got = backlog[i : i + 40]
        t = max(stalled + (i // 40) * 0.02, got[-1][1] + D)
        first_us, step_us = clock.run(got[0][0], len(got), t)
        samples += [(n, true, (first_us + k * step_us) / 1e6) for k, (n, true) in enumerate(got)]
    assert clock.quality(None, None).restarts == {}
    assert p99(errors(samples)) < 0.0005
