"""The sample clock: a causal model of the device's clock that dates every sample from its counter.

Every line of one bulk read shares one host receive time, so the host time of a line is late by however
long it waited in the adapter (USB latency timer) and for the reader to be scheduled. The device's counter
``n`` (its ``seq`` column, else the line's number in the session) is exact, and the device samples at a
steady period ``P`` (a nominal rate, off by the crystal's drift of some ppm). So sample ``n`` was taken at

    T(n) = T0 + n * P

and a read whose last line is ``n_last`` arrives at host time ``a = T(n_last) + d + e``: ``d`` is the
smallest possible transfer delay (constant) and ``e >= 0`` the extra delay of that read. Late reads only ever
add delay, so the points ``(n_last, a)`` of all reads lie on or above the line ``T(n) + d``: the device's
clock is the **lower envelope** of the arrivals. The model estimates that line:

1. **Envelope points.** Host time is cut into buckets of ``BUCKET`` (0.25 s); each bucket keeps only its
   earliest relative arrival, the read minimising ``a - n * P^``. Reads delayed by a busy host never get in.
2. **Period (drift).** ``P^`` is the least-squares slope of ``a`` against ``n`` over the envelope points of
   the last ``WINDOW`` (20 s), refitted when a bucket closes, after one pass that drops points far above the
   line (a whole bucket of late reads). Until ``MIN_SPAN`` (2 s) of points exist the nominal rate (the
   ``--sample-rate`` setting) or the previous segment's period is used; with neither, until two envelope
   points exist (each bucket then keeps its latest read, the freshest) a read's lines are spread evenly
   between the previous read's host time and its own.
   Drift versus the nominal rate is ``(1 / P^) * P_nominal - 1`` in ppm.
3. **Offset.** ``c`` puts the line under the envelope points of the last ``ANCHOR`` (2 s):
   ``c = min_i(a_i - n_i * P^)``; every read then pushes it further down if needed, ``c = min(c, a - n_last * P^)``,
   so no sample is ever dated after it was received. The modelled time is ``t^(n) = c + n * P^``
   (``T(n) + d``: the constant transfer delay, well under a millisecond, is not knowable from the host).
4. **Forward only.** A sample is never dated before one dated already: a run whose model start is not
   after the last dated sample is spread from there up to its modelled end.
5. **Segments.** The model restarts (envelope emptied, period kept) when the counter goes backwards (device
   reset: ``reset``), and when a read's last sample arrives more than ``PAUSE`` (50 ms) after its modelled
   time and the reads stay that late for ``CONFIRM`` (0.1 s), or right after a counter gap: the device
   paused, or restarted with a continuing counter (``pause``; the earliest of those late reads anchors the
   new segment, the lines read meanwhile keep the old dating); while that lateness falls, it is a backlog
   after a stalled host being read in pieces, not a pause. One late read is no pause: the reader reads
   everything waiting, so the last line of a read is fresh however late the read; only a backlog read in
   pieces, the adapter's latency timer and the moment between the read and taking the host time add to it.
   If that lateness grows instead of staying steady, or the earliest arrival of ``CHANGE_BUCKETS`` buckets
   in a row misses the fitted line by more than ``CHANGE`` (2 ms) on the same side, the device changed its
   rate: the model restarts from those points and no longer trusts the nominal rate (``rate_change``). A
   counter jump arriving more than ``PAUSE`` early restarts it too (``jump``). A counter gap whose arrivals
   still fit keeps the model: the samples were lost in transit, the device's clock went on.

Quality, for session.json: the delay of each read's last sample behind the model (host scheduling and
adapter latency: what the host time alone would have been off by, at best), the envelope residual (how far
each bucket's earliest arrival was from the line fitted before it: the model's own error plus the smallest
delay's spread), the rate, the drift and the segments.
"""

from __future__ import annotations

import collections
import dataclasses
import math

from kernel.manifest import ClockQuality

BUCKET = 0.25  # seconds of host time per envelope point
WINDOW = 20.0  # seconds of envelope points in the period fit
MIN_SPAN = 2.0  # seconds of envelope points before the fit replaces the nominal rate
ANCHOR = 2.0  # seconds of recent envelope points the offset is set under
PAUSE = 0.05  # seconds a read's last sample may be off the model before the model restarts
CONFIRM = 0.1  # seconds reads must stay that late (without a counter gap) to confirm a device pause
CHANGE = 0.002  # seconds an envelope point may miss the line before it counts towards a rate change
CHANGE_BUCKETS = 3  # envelope points in a row off the line on one side: the rate changed


class Histogram:
    """Counts of positive durations in log-spaced bins (20 a decade from 1 us): percentiles in O(1) memory."""

    PER_DECADE = 20

    def __init__(self) -> None:
        self.counts: collections.Counter[int] = collections.Counter()
        self.n = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Count one duration (negative ones count as 0)."""
        us = seconds * 1e6
        self.counts[int(self.PER_DECADE * math.log10(us)) + 1 if us >= 1.0 else 0] += 1
        self.n += 1
        self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float:
        """The q-th percentile in seconds (the upper edge of its bin), 0 when empty."""
        if not self.n:
            return 0.0
        need, seen = q / 100 * self.n, 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= need:
                return min(10 ** (b / self.PER_DECADE) * 1e-6 if b else 1e-6, self.max)
        return self.max


@dataclasses.dataclass
class _Segment:
    """One stretch of the device's clock: a reference point, envelope points and the fitted line."""

    n0: int  # counter of the reference read
    a0: float  # its host time (Unix seconds); times below are relative to it
    period: float | None  # P^, seconds per sample (None: not known yet)
    trust_nominal: bool
    offset: float = 0.0  # c: modelled time of n0, relative to a0
    fit_offset: float = 0.0  # c as fitted at the last bucket close (before per-read pushes)
    points: collections.deque[tuple[int, float]] = dataclasses.field(default_factory=collections.deque)
    bucket_start: float = 0.0
    bucket_min: tuple[int, float] | None = None
    suspects: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # late reads (n, host time)
    off_side: list[int] = dataclasses.field(default_factory=list)  # signs of recent off-line buckets

    def model(self, n: int) -> float:
        """Modelled time of sample n, relative to a0."""
        return self.offset + (n - self.n0) * (self.period or 0.0)


class SampleClock:
    """Dates samples from their counter and the host times of the reads that brought them (causal)."""

    def __init__(self, nominal_rate: float | None = None) -> None:
        self.nominal_period = 1.0 / nominal_rate if nominal_rate else None
        self.segments = 0
        self.restarts: dict[str, int] = {}
        self.delays = Histogram()  # per read: last sample's arrival behind the model
        self.residuals = Histogram()  # per bucket: earliest arrival off the line fitted before it
        self._seg: _Segment | None = None
        self._last_n: int | None = None
        self._period: float | None = None  # last fitted period, carried over restarts
        self._last_us = 0.0  # the latest sample time handed out: times never go backwards
        self._prev_t: float | None = None  # host time of the previous read

    # -- public -------------------------------------------------------------------------------------
    def run(self, first: int, count: int, t: float) -> tuple[float, float]:
        """Observe a read of ``count`` consecutive counters from ``first`` received at Unix time ``t``.

        Returns (sample time of ``first``, period), both in Unix microseconds, for dating the run's lines.
        """
        last = first + count - 1
        seg = self._observe(first, last, t)
        step = (seg.period or 0.0) * 1e6
        if seg.period is not None:
            model = (seg.a0 + seg.model(first)) * 1e6
        elif self._prev_t is not None and t > self._prev_t:  # no period yet: spread since the previous read
            step = (t - self._prev_t) / count * 1e6
            model = self._prev_t * 1e6 + step
        else:
            model = t * 1e6
        self._prev_t = t
        if count > 1 and step < 1.0:  # no usable period (first read, no rate yet): 1 us apart, the last on arrival
            model, step = min(model, t * 1e6 - (count - 1)), 1.0
        start = model
        if model < self._last_us + 1.0:  # at least 1 us after the last sample dated (distinct in the files)
            start = self._last_us + 1.0
            if count > 1:
                step = max((model + (count - 1) * step - start) / (count - 1), 1.0)
        self._last_us = start + (count - 1) * step  # kernel.batch.sample_rows writes times at or below this
        return start, step

    def times(self, counters: list[int], t: float) -> list[float]:
        """Observe a read of arbitrary counters (gaps, resets) received at ``t``: their sample times in us."""
        out: list[float] = []
        start = 0
        for i in range(1, len(counters) + 1):
            if i == len(counters) or counters[i] <= counters[i - 1]:
                run = counters[start:i]
                if i < len(counters):  # a reset follows: date this run with the model as it stands
                    seg = self._seg if self._seg is not None and self._last_n is not None and run[0] > self._last_n \
                        else self._observe(run[0], run[-1], t)
                    self._last_n = run[-1]
                else:
                    seg = self._observe(run[0], run[-1], t)
                for n in run:
                    model = seg.a0 + seg.model(n) if seg.period is not None else t
                    self._last_us = max(model * 1e6, self._last_us + 1.0)
                    out.append(self._last_us)
                start = i
        return out

    def quality(self, ntp_start: bool | None, ntp_end: bool | None) -> ClockQuality:
        """The model's summary and quality for session.json."""
        seg = self._seg
        period = (seg.period if seg is not None else None) or self._period
        rate = 1.0 / period if period else None
        nominal = 1.0 / self.nominal_period if self.nominal_period else None
        changed = "rate_change" in self.restarts  # the nominal rate no longer applies
        drift = (rate / nominal - 1.0) * 1e6 if rate and nominal and not changed else None
        return ClockQuality(
            rate_hz=_round(rate, 6), nominal_rate_hz=nominal, drift_ppm=_round(drift, 2),
            delay_ms={f"p{q}": _round(self.delays.percentile(q) * 1e3, 3) for q in (50, 99)}
            | {"max": _round(self.delays.max * 1e3, 3)},
            residual_us={f"p{q}": _round(self.residuals.percentile(q) * 1e6, 1) for q in (50, 99)}
            | {"max": _round(self.residuals.max * 1e6, 1)},
            reads=self.delays.n, segments=self.segments, restarts=dict(sorted(self.restarts.items())),
            ntp_at_start=ntp_start, ntp_at_end=ntp_end,
        )

    # -- model --------------------------------------------------------------------------------------
    def _observe(self, first: int, last: int, t: float) -> _Segment:
        seg = self._seg
        if seg is None:
            seg = self._restart(None, last, t)
        elif self._last_n is not None and first <= self._last_n:
            seg = self._restart("reset", last, t)
        elif seg.period is not None:
            off = t - seg.a0 - seg.model(last)
            skipped = self._last_n is not None and first > self._last_n + 1
            if off < -PAUSE and skipped:
                seg = self._restart("jump", last, t)
            elif off > PAUSE:
                seg.suspects.append((last, t))
                if not skipped and t - seg.suspects[0][1] < CONFIRM:
                    self._last_n = last
                    return seg  # a stale read (a backlog read in pieces), or the start of a pause: wait and see
                restarted = self._late_restart(seg)
                if restarted is None:
                    self._last_n = last
                    return seg  # the lateness is falling: a backlog being read, not a pause
                seg = restarted
            else:
                seg.suspects.clear()
        self._last_n = last
        rel = t - seg.a0
        if seg.period is None and seg.trust_nominal:
            seg.period = self.nominal_period or self._period
        if rel - seg.bucket_start >= BUCKET:
            self._close_bucket(seg)
            seg = self._seg  # a rate change restarts the segment
            assert seg is not None
            rel = t - seg.a0
            seg.bucket_start, seg.bucket_min = rel, (last, rel)
        elif seg.bucket_min is None or seg.period is None or (
            rel - last * seg.period < seg.bucket_min[1] - seg.bucket_min[0] * seg.period
        ):
            seg.bucket_min = (last, rel)  # without a period yet: the latest read, the freshest
        if seg.period is not None:
            seg.offset = min(seg.offset, rel - (last - seg.n0) * seg.period)
            self.delays.add(rel - seg.model(last))
        return seg

    def _late_restart(self, seg: _Segment) -> _Segment | None:
        """Reads stayed late: a pause (lateness steady) or a slower rate (lateness growing) starts a segment;
        None while the lateness is falling (a backlog after a stalled host, read in pieces)."""
        late = [t - seg.a0 - seg.model(n) for n, t in seg.suspects]
        half = max(len(late) // 2, 1)
        trend = min(late[half:]) - min(late[:half]) if len(late) >= 2 else 0.0
        if trend < -PAUSE / 2:
            return None
        if len(late) >= 4 and trend > PAUSE / 2:
            return self._restart("rate_change", *seg.suspects[-1], keep=list(seg.suspects), trust_nominal=False)
        period = seg.period or 0.0
        best = min(seg.suspects, key=lambda s: s[1] - s[0] * period)  # the earliest relative arrival
        return self._restart("pause", *best)

    def _restart(self, cause: str | None, last: int, t: float, keep: list[tuple[int, float]] | None = None,
                 trust_nominal: bool = True) -> _Segment:
        """Start a new segment at the read (last counter, host time); ``keep``: envelope points carried over."""
        if cause is not None:
            self.restarts[cause] = self.restarts.get(cause, 0) + 1
        old = self._seg
        if old is not None and old.period is not None and cause != "rate_change":
            self._period = old.period
        self.segments += 1
        seg = _Segment(n0=last, a0=t, period=None, trust_nominal=trust_nominal and (old is None or old.trust_nominal))
        if keep:
            seg.n0, seg.a0 = keep[0]
            seg.points.extend((n, a - seg.a0) for n, a in keep)
            seg.bucket_start = t - seg.a0
            self._fit(seg)
        else:
            seg.bucket_min = (last, 0.0)
        self._seg = seg
        return seg

    def _close_bucket(self, seg: _Segment) -> None:
        """The bucket's earliest arrival joins the envelope points; refit the line; watch for a rate change."""
        if seg.bucket_min is None:
            return
        n, rel = seg.bucket_min
        seg.bucket_min = None
        if seg.period is not None and seg.points:
            miss = rel - (seg.fit_offset + (n - seg.n0) * seg.period)
            self.residuals.add(abs(miss))
            side = (miss > CHANGE) - (miss < -CHANGE)
            seg.off_side = [*seg.off_side[-(CHANGE_BUCKETS - 1) :], side] if side else []
            if len(seg.off_side) == CHANGE_BUCKETS and abs(sum(seg.off_side)) == CHANGE_BUCKETS:
                recent = [(pn, seg.a0 + pa) for pn, pa in list(seg.points)[-(CHANGE_BUCKETS - 1) :]]
                self._restart("rate_change", n, seg.a0 + rel, keep=[*recent, (n, seg.a0 + rel)], trust_nominal=False)
                return
        seg.points.append((n, rel))
        while seg.points and rel - seg.points[0][1] > WINDOW:
            seg.points.popleft()
        self._fit(seg)

    def _fit(self, seg: _Segment) -> None:
        """Refit the period (least squares over the envelope points, once more without outliers) and offset."""
        pts = list(seg.points)
        span = pts[-1][1] - pts[0][1] if pts else 0.0
        prior = seg.trust_nominal and (self.nominal_period is not None or self._period is not None)
        if len(pts) >= 2 and (span >= MIN_SPAN or not prior):
            slope = _slope(pts)
            if slope is not None and slope > 0:
                resid = [a - slope * (n - seg.n0) for n, a in pts]
                base = min(resid)
                spread = sorted(r - base for r in resid)[len(resid) // 2]
                keep = [p for p, r in zip(pts, resid, strict=True) if r - base <= max(4 * spread, 5e-4)]
                slope = _slope(keep) if len(keep) >= 2 else slope
                if slope is not None and slope > 0:
                    seg.period = slope
        if seg.period is None:
            return
        recent = [(n, a) for n, a in pts if pts[-1][1] - a <= ANCHOR] or pts
        seg.offset = seg.fit_offset = min(a - (n - seg.n0) * seg.period for n, a in recent)


def _slope(pts: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of time against counter."""
    k = len(pts)
    mn = sum(n for n, _ in pts) / k
    ma = sum(a for _, a in pts) / k
    sxx = sum((n - mn) ** 2 for n, _ in pts)
    if sxx <= 0:
        return None
    return sum((n - mn) * (a - ma) for n, a in pts) / sxx


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
