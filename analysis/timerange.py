"""Time windows given by the user: absolute UTC times or offsets from the start of the data."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

import pandas as pd

from analysis.errors import BadTimeRange

_NUMBER_RE = re.compile(r"^[+-]?\d+(\.\d*)?$")

TimeLike = str | datetime | pd.Timestamp | pd.Timedelta | float | int | None


def parse_instant(value: TimeLike) -> pd.Timestamp | pd.Timedelta | None:
    """Parse a start/end: an absolute time (UTC if naive) or an offset ("+90s", "10min", 2.5 = seconds)."""
    if value is None or isinstance(value, pd.Timedelta):
        return value
    if isinstance(value, (int, float)):
        return pd.Timedelta(seconds=float(value))
    if isinstance(value, (datetime, pd.Timestamp)):
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    text = str(value).strip()
    if _NUMBER_RE.match(text):
        return pd.Timedelta(seconds=float(text))
    try:
        return pd.Timedelta(text.lstrip("+"))
    except ValueError:
        pass
    try:
        ts = pd.Timestamp(text)
    except ValueError as err:
        raise BadTimeRange(
            f"cannot read {text!r} as a time (ISO 8601, e.g. 2026-11-25T09:00:00Z) "
            "or an offset (e.g. 90s, +5min)"
        ) from err
    if pd.isna(ts):
        raise BadTimeRange(f"cannot read {text!r} as a time")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_duration(value: TimeLike) -> pd.Timedelta | None:
    """Parse a duration ("10s", "2min", 5 = seconds); it must be positive."""
    if value is None:
        return None
    parsed = parse_instant(value)
    if not isinstance(parsed, pd.Timedelta):
        raise BadTimeRange(f"duration {value!r} is a point in time, not a length (e.g. 10s, 2min)")
    if parsed <= pd.Timedelta(0):
        raise BadTimeRange(f"duration must be positive, not {value!r}")
    return parsed


@dataclasses.dataclass(frozen=True)
class Window:
    """A requested time window; parts may be offsets until resolved against the data's start."""

    start: pd.Timestamp | pd.Timedelta | None = None
    end: pd.Timestamp | pd.Timedelta | None = None
    duration: pd.Timedelta | None = None

    @classmethod
    def parse(cls, start: TimeLike = None, end: TimeLike = None, duration: TimeLike = None) -> Window:
        """Validate user input; end and duration are exclusive alternatives."""
        if end is not None and duration is not None:
            raise BadTimeRange("give either an end or a duration, not both")
        return cls(parse_instant(start), parse_instant(end), parse_duration(duration))

    @property
    def unbounded(self) -> bool:
        """True when the window selects everything."""
        return self.start is None and self.end is None and self.duration is None

    def resolve(self, data_start: pd.Timestamp, data_end: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Absolute [start, end) in UTC; raises BadTimeRange when empty or outside [data_start, data_end]."""
        start = data_start if self.start is None else self.start
        if isinstance(start, pd.Timedelta):
            start = data_start + start
        if self.duration is not None:
            end = start + self.duration
        elif self.end is None:
            end = data_end + pd.Timedelta(microseconds=1)
        else:
            end = data_start + self.end if isinstance(self.end, pd.Timedelta) else self.end
        if end <= start and self.end is not None:
            raise BadTimeRange(
                f"empty time range: start {start.isoformat()} is not before end {end.isoformat()}"
            )
        if start > data_end or end <= data_start:
            raise BadTimeRange(
                f"time range {start.isoformat()} .. {end.isoformat()} is outside the data "
                f"({data_start.isoformat()} .. {data_end.isoformat()})"
            )
        return start, end
