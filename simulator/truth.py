"""The simulator's true sample times: its emission schedule, logged per pacing segment (``--truth FILE``).

Line ``seq`` falls due at ``time + (seq - first_seq) / rate`` (Unix seconds) within the segment that starts
at ``first_seq``; a segment starts at start-up, after a pause and after a replug. One JSON object a line.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from pathlib import Path
from typing import BinaryIO


@dataclasses.dataclass(frozen=True)
class TruthSegment:
    """Lines from ``first_seq`` on fall due at ``time + (seq - first_seq) / rate``."""

    first_seq: int
    time: float
    rate: float

    def to_line(self) -> bytes:
        """One line of the truth file."""
        return (json.dumps(dataclasses.asdict(self)) + "\n").encode()


def write_segment(f: BinaryIO, segment: TruthSegment) -> None:
    """Append a segment and flush, so a reader of the file sees it at once."""
    f.write(segment.to_line())
    f.flush()


def read_truth(path: Path) -> list[TruthSegment]:
    """The segments of a truth file, in order."""
    return [TruthSegment(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def true_times(segments: list[TruthSegment], seqs: list[int]) -> list[float]:
    """The scheduled (true) Unix time of each counter value."""
    starts = [s.first_seq for s in segments]
    out = []
    for q in seqs:
        seg = segments[max(bisect.bisect_right(starts, q) - 1, 0)]
        out.append(seg.time + (q - seg.first_seq) / seg.rate)
    return out
