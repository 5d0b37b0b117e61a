"""sensor-sim: run a simulated lab monitor on a pseudo-terminal until stopped."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from simulator.control import COMMANDS_HELP, ControlFifo, run_command
from simulator.device import Simulator
from simulator.errors import SimulatorError
from simulator.settings import PERIODIC_FAULTS, SimSettings
from simulator.waveforms import WAVEFORMS

log = logging.getLogger("simulator")

EXAMPLES = f"""\
examples:
  sensor-sim --link /tmp/sensor/sim0 --channels 4 --rate 250
      ECG-like lines until Ctrl-C; read them with: sensor-reader --port /tmp/sensor/sim0 ...
  sensor-sim --link /tmp/sim0 --channels 8 --rate 1000 --seq --header --checksum --waveform mixed
      "seq,ch1,...,ch8*HH" header, then "0,0.0123,...*HH" lines
  sensor-sim --link /tmp/sim0 --rate 0 --count 1000000 --seq --record /tmp/sent.txt
      one million lines as fast as the reader takes them; /tmp/sent.txt holds every line sent
  sensor-sim --link /tmp/sim0 --control /tmp/sim0.ctl --faults garbage,truncated --fault-every 5
      a bad line every 5 s; and on demand: echo unplug > /tmp/sim0.ctl; echo replug > /tmp/sim0.ctl

{COMMANDS_HELP}

periodic faults (--faults): {", ".join(PERIODIC_FAULTS)}
  ("pause" pauses 1 s; "unplug" unplugs, then replugs 1 s later)

environment (flags win): SENSOR_SIM_LINK, SENSOR_SIM_CHANNELS, SENSOR_SIM_RATE, SENSOR_LOG_LEVEL.
Lines wait for the reader (like hardware flow control): nothing is dropped while no one reads.
Exit status: 0 when stopped (SIGTERM, SIGINT, "stop", --count/--duration reached), 1 on errors, 2 on bad flags.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    env = os.environ
    p = argparse.ArgumentParser(
        prog="sensor-sim",
        description="Simulated lab monitor: streams N channels of text sample lines on a pseudo-terminal "
                    "behind a stable symlink (the stand-in for a USB serial adapter), with fault injection.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--link", metavar="PATH", default=env.get("SENSOR_SIM_LINK"),
                   required="SENSOR_SIM_LINK" not in env,
                   help="symlink to create, pointing at the pty (the port the reader opens)")
    p.add_argument("--channels", metavar="N", type=int, default=env.get("SENSOR_SIM_CHANNELS", "4"),
                   help="number of channels (default %(default)s)")
    p.add_argument("--rate", metavar="HZ", type=float, default=env.get("SENSOR_SIM_RATE", "250"),
                   help="lines per second; 0 = as fast as the reader takes them (default %(default)s)")
    p.add_argument("--waveform", choices=WAVEFORMS, default="ecg",
                   help="ecg (PQRST ~1.2 Hz), sine, noise, mixed (ch1 ecg, ch2 sine, ...) (default %(default)s)")
    p.add_argument("--freq", metavar="HZ", type=float, default=1.0, help="sine frequency in Hz (default %(default)s)")
    p.add_argument("--seq", action="store_true", help="first column is a sequence counter")
    p.add_argument("--seq-start", metavar="N", type=int, default=0, help="first sequence number (default %(default)s)")
    p.add_argument("--header", action="store_true",
                   help='send a header line ("seq,ch1,...") first and after each replug')
    p.add_argument("--delimiter", metavar="C", default=",", help="field delimiter (default %(default)r; \\t for a tab)")
    p.add_argument("--checksum", action="store_true", help='append an NMEA-style "*HH" checksum to each line')
    p.add_argument("--crlf", action="store_true", help="end lines with CR LF instead of LF")
    p.add_argument("--cr", action="store_true", help="end lines with CR only instead of LF")
    p.add_argument("--decimals", metavar="N", type=int, default=4, help="decimals per value (default %(default)s)")
    p.add_argument("--count", metavar="N", type=int, help="stop after N data lines")
    p.add_argument("--duration", metavar="S", type=float, help="stop after S seconds")
    p.add_argument("--linger", metavar="S", type=float, default=5.0,
                   help="after --count/--duration: wait up to S s for the reader to take what is "
                        "buffered before closing the pty (default %(default)s)")
    p.add_argument("--seed", metavar="N", type=int, default=0, help="random seed: same seed, same lines (default 0)")
    p.add_argument("--record", metavar="FILE", type=Path, help="write every valid data line sent to FILE (no checksum/EOL)")
    p.add_argument("--control", metavar="PATH", type=Path, help="create a FIFO at PATH accepting the commands below")
    p.add_argument("--faults", metavar="LIST", default="", help=f"comma list of faults to inject periodically: "
                                                 f"{','.join(PERIODIC_FAULTS)}")
    p.add_argument("--fault-every", metavar="S", type=float, default=5.0, help="seconds between periodic faults "
                                                                  "(default %(default)s)")
    p.add_argument("--log-level", metavar="LEVEL", default=env.get("SENSOR_LOG_LEVEL", "INFO"),
                   help="DEBUG, INFO, WARNING or ERROR (default %(default)s)")
    return p


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    """Validated settings from parsed flags."""
    delimiter = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    return SimSettings(
        link=Path(args.link), channels=args.channels, rate=args.rate, waveform=args.waveform, freq=args.freq,
        seq=args.seq, seq_start=args.seq_start, header=args.header, delimiter=delimiter, checksum=args.checksum,
        crlf=args.crlf, cr=args.cr, decimals=args.decimals, count=args.count, duration=args.duration, seed=args.seed,
        record=args.record, control=args.control,
        faults=tuple(f.strip() for f in args.faults.split(",") if f.strip()), fault_every=args.fault_every,
        linger=args.linger, log_level=args.log_level.upper())


def make_simulator(s: SimSettings) -> Simulator:
    """A Simulator configured by the settings (not started)."""
    return Simulator(s.link, s.channels, s.rate, waveform=s.waveform, freq=s.freq, seq=s.seq,
                     seq_start=s.seq_start, header=s.header, delimiter=s.delimiter, checksum=s.checksum,
                     crlf=s.crlf, cr=s.cr, decimals=s.decimals, count=s.count, duration=s.duration, seed=s.seed,
                     keep_sent=False, record=s.record)


def _periodic_fault(sim: Simulator, kind: str, stop: threading.Event) -> None:
    """Inject one periodic fault."""
    if kind == "pause":
        sim.pause(1.0)
    elif kind == "unplug":
        sim.unplug()
        if not stop.wait(1.0):
            sim.replug()
    else:
        run_command(sim, kind, stop.set)


def run(s: SimSettings, stop: threading.Event) -> int:
    """Run until ``stop`` is set or the count/duration is reached; returns the exit status."""
    sim = make_simulator(s).start()
    control = ControlFifo(s.control, sim, stop.set) if s.control is not None else None
    try:
        n = 0
        next_fault = time.monotonic() + s.fault_every
        while not stop.is_set():
            if sim.wait_done(0.1):
                if s.linger and not sim.wait_drained(s.linger):
                    log.warning("closing with %d bytes the reader has not taken", sim.unread_bytes())
                break
            if s.faults and time.monotonic() >= next_fault:
                next_fault += s.fault_every
                kind = s.faults[n % len(s.faults)]
                n += 1
                try:
                    _periodic_fault(sim, kind, stop)
                except SimulatorError as err:
                    log.warning("periodic %s failed: %s", kind, err)
        log.info("stopping: %d lines sent", sim.sent_count)
    finally:
        if control is not None:
            control.close()
        sim.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sensor-sim`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
    except SimulatorError as err:
        print(f"sensor-sim: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s received", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(settings, stop)
    except (SimulatorError, OSError) as err:
        log.error("sensor-sim failed: %s", err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
