"""Sample times as the batch rows carry them: integer microseconds, never before the float they stand for."""

from __future__ import annotations

import math
from itertools import pairwise

from kernel.batch import sample_rows, sample_rows_at

PRE = b"2026-11-29T12:00:00.000000Z,"


def written(rows: bytes) -> list[int]:
    """The sample times of some rows."""
    return [int(line.split(b",")[1]) for line in rows.splitlines()]


def test_a_run_starts_on_the_microsecond_the_clock_gave_at_todays_epoch() -> None:
    # At 1.8e15 us a float has quarter-microsecond steps; times * 1000 as a float is off by up to 128 ns,
    # which once dated a run's first line on the microsecond of the previous run's last.
    base = 1_795_995_241_646_985.0
    for k in range(4000):
        first = base + k / 4
        assert written(sample_rows(PRE, b"1,0.5\n2,0.6\n", first, 2000.0)) == [math.floor(first),
                                                                               math.floor(first + 2000.0)]


def test_a_long_run_never_passes_the_clocks_last_time() -> None:
    first, step, n = 1_795_995_241_646_985.25, 999.9996, 10_000
    times = written(sample_rows(PRE, b"".join(b"%d,0.5\n" % i for i in range(n)), first, step))
    assert all(b > a for a, b in pairwise(times))
    assert times[-1] <= first + (n - 1) * step  # the next run starts at least 1 us after this


def test_rows_at_their_own_times() -> None:
    assert written(sample_rows_at(PRE, b"1,0.5\n3,0.7\n", [10.9, 12.0])) == [10, 12]
