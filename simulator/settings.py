"""sensor-sim's settings: its field table and the one frozen object built from it at the entry point."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from collections.abc import Mapping
from pathlib import Path

from kernel import settings as ks
from kernel.settings import Field
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
    truth: Path | None = None
    burst_ms: float = 0.0
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
        if self.truth is not None and not self.truth.parent.is_dir():
            problems.append(f"--truth: folder {self.truth.parent} does not exist")
        if not 0 <= self.burst_ms <= 1000:
            problems.append(f"--burst-ms: must be 0..1000 ms (got {self.burst_ms})")
        if problems:
            raise SimulatorConfigError("; ".join(problems))


def _delimiter(raw: str) -> str:
    """`\\t` or `tab` spell a tab on a command line."""
    return "\t" if raw in ("\\t", "tab") else raw


FIELDS = (
    Field("link", "SENSOR_SIM_LINK", "--link", ks.path, metavar="PATH", shown_default="— (required)",
          check=ks.existing_parent,
          help="symlink to create, pointing at the pty (`/dev/pts/N`): the port the reader opens; its folder "
          "must exist"),
    Field("channels", "SENSOR_SIM_CHANNELS", "--channels", ks.integer, metavar="N", help="channels per line (1..1024)"),
    Field("rate", "SENSOR_SIM_RATE", "--rate", ks.number, metavar="HZ",
          help="lines per second; 0 = as fast as the reader takes them"),
    Field("waveform", None, "--waveform", ks.one_of(*WAVEFORMS), choices=WAVEFORMS,
          help="`ecg` (PQRST ~1.2 Hz), `sine`, `noise`, `mixed` (ch1 ecg, ch2 sine, ...)"),
    Field("freq", None, "--freq", ks.number, metavar="HZ", help="sine frequency"),
    Field("seq", None, "--seq", ks.boolean, switch=True, help="sequence counter as the first column"),
    Field("seq_start", None, "--seq-start", ks.integer, metavar="N", help="first sequence number"),
    Field("header", None, "--header", ks.boolean, switch=True,
          help="header line (`seq,ch1,...`) first and after each replug"),
    Field("delimiter", None, "--delimiter", _delimiter, metavar="C",
          help="one ASCII character that cannot occur in a number; `\\t` or `tab` for a tab"),
    Field("checksum", None, "--checksum", ks.boolean, switch=True, help="NMEA-style `*HH` suffix on every line"),
    Field("crlf", None, "--crlf", ks.boolean, switch=True, help="CR LF line endings"),
    Field("cr", None, "--cr", ks.boolean, switch=True, help="CR-only line endings"),
    Field("decimals", None, "--decimals", ks.integer, metavar="N", help="decimals per value"),
    Field("count", None, "--count", ks.integer, metavar="N", shown_default="none", help="stop after N data lines"),
    Field("duration", None, "--duration", ks.number, metavar="S", shown_default="none",
          help="stop after S seconds"),
    Field("linger", None, "--linger", ks.number, metavar="S",
          help="after `--count`/`--duration`: keep the pty open up to S s until the reader has taken everything"),
    Field("seed", None, "--seed", ks.integer, metavar="N",
          help="seed of the waveforms' noise, phases and amplitudes, and of garbage bytes: same seed, same lines"),
    Field("record", None, "--record", ks.path, metavar="FILE", shown_default="none", check=ks.existing_parent,
          help="write every valid data line sent (no checksum, `\\n` endings) to FILE"),
    Field("truth", None, "--truth", ks.path, metavar="FILE", shown_default="none",
          help="log the true sample times (the emission schedule, one JSON object per pacing segment) to FILE"),
    Field("burst_ms", None, "--burst-ms", ks.number, metavar="MS",
          help="deliver the lines that fell due every MS milliseconds, as a USB adapter's latency timer does "
          "(`0`: each line when due)"),
    Field("control", None, "--control", ks.path, metavar="PATH", shown_default="none", check=ks.existing_parent,
          help="create a FIFO at PATH accepting control commands"),
    Field("faults", None, "--faults", ks.words, metavar="LIST", shown_default="none",
          help="comma list injected in turn every `--fault-every` s: `" + ",".join(PERIODIC_FAULTS) + "` "
          "(`pause` pauses 1 s; `unplug` replugs 1 s later)"),
    Field("fault_every", None, "--fault-every", ks.number, metavar="S", help="seconds between periodic faults"),
    Field("log_level", "SENSOR_LOG_LEVEL", "--log-level", ks.log_level, metavar="LEVEL",
          help="log level (stderr); the pty name and link are logged at start"),
)

TABLE = ks.Table("simulator", FIELDS, SimSettings, SimulatorConfigError)


def build_settings(args: argparse.Namespace, env: Mapping[str, str]) -> SimSettings:
    """Validated settings from the flags and (below them) the environment; all problems in one message."""
    values = TABLE.read(args, env)
    if "link" not in values:
        raise SimulatorConfigError("--link / SENSOR_SIM_LINK is required: the symlink to create")
    settings = SimSettings(**values)
    TABLE.validate(settings)
    return settings
