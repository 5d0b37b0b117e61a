"""sensor-sim's settings: one frozen object built from the environment and the command line."""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

from simulator.errors import SimulatorConfigError
from simulator.framing import LineFormat
from simulator.waveforms import WAVEFORMS

PERIODIC_FAULTS = ("garbage", "truncated", "overlong", "nul", "pause", "unplug")


@dataclasses.dataclass(frozen=True)
class SimSettings:
    """Everything sensor-sim needs, validated once."""

    link: Path
    channels: int = 4
    rate: float = 250.0
    waveform: str = "ecg"
    freq: float = 1.0
    seq: bool = False
    seq_start: int = 0
    header: bool = False
    delimiter: str = ","
    checksum: bool = False
    crlf: bool = False
    cr: bool = False
    decimals: int = 4
    count: int | None = None
    duration: float | None = None
    seed: int = 0
    record: Path | None = None
    control: Path | None = None
    faults: tuple[str, ...] = ()
    fault_every: float = 5.0
    linger: float = 5.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        problems = []
        if self.channels < 1 or self.channels > 1024:
            problems.append(f"--channels must be 1..1024, not {self.channels}")
        if not (math.isfinite(self.rate) and self.rate >= 0):
            problems.append(f"--rate must be >= 0 lines/s (0 = as fast as possible), not {self.rate}")
        if self.waveform not in WAVEFORMS:
            problems.append(f"--waveform must be one of {', '.join(WAVEFORMS)}, not {self.waveform!r}")
        if not (math.isfinite(self.freq) and self.freq > 0):
            problems.append(f"--freq must be > 0 Hz, not {self.freq}")
        if self.count is not None and self.count < 0:
            problems.append(f"--count must be >= 0, not {self.count}")
        if self.duration is not None and not self.duration >= 0:
            problems.append(f"--duration must be >= 0 s, not {self.duration}")
        try:
            LineFormat(channels=max(self.channels, 1), delimiter=self.delimiter, decimals=self.decimals,
                       crlf=self.crlf, cr=self.cr)
        except ValueError as err:
            problems.append(f"--delimiter/--decimals/--crlf/--cr: {err}")
        unknown = [f for f in self.faults if f not in PERIODIC_FAULTS]
        if unknown:
            problems.append(f"--faults: unknown {', '.join(unknown)}; choose from {', '.join(PERIODIC_FAULTS)}")
        if not self.fault_every > 0:
            problems.append(f"--fault-every must be > 0 s, not {self.fault_every}")
        if not self.linger >= 0:
            problems.append(f"--linger must be >= 0 s, not {self.linger}")
        if logging.getLevelName(self.log_level.upper()) not in range(100):
            problems.append(f"--log-level must be DEBUG, INFO, WARNING or ERROR, not {self.log_level!r}")
        if self.record is not None and not self.record.parent.is_dir():
            problems.append(f"--record: folder {self.record.parent} does not exist")
        if problems:
            raise SimulatorConfigError("; ".join(problems))
