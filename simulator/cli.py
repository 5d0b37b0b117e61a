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

from kernel import settings as ks
from kernel.logs import setup_logging
from simulator.control import COMMANDS_HELP, ControlFifo, run_command
from simulator.device import Simulator
from simulator.errors import SimulatorError
from simulator.settings import PERIODIC_FAULTS, TABLE, SimSettings, build_settings

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
    p = argparse.ArgumentParser(
        prog="sensor-sim",
        description="Simulated lab monitor: streams N channels of text sample lines on a pseudo-terminal "
                    "behind a stable symlink (the stand-in for a USB serial adapter), with fault injection.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    TABLE.add_arguments(p)
    ks.add_version(p)
    return p


def make_simulator(s: SimSettings) -> Simulator:
    """A Simulator configured by the settings (not started)."""
    return Simulator(s.link, s.channels, s.rate, waveform=s.waveform, freq=s.freq, seq=s.seq,
                     seq_start=s.seq_start, header=s.header, delimiter=s.delimiter, checksum=s.checksum,
                     crlf=s.crlf, cr=s.cr, decimals=s.decimals, count=s.count, duration=s.duration, seed=s.seed,
                     keep_sent=False, record=s.record, burst=s.burst_ms / 1000, truth=s.truth)


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
        settings = build_settings(args, os.environ)
    except SimulatorError as err:
        print(f"sensor-sim: error: {err}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, os.environ)
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
