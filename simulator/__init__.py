"""Simulated lab monitor: text sample lines on a pseudo-terminal behind a stable symlink, faults on demand."""

from simulator.device import Simulator
from simulator.errors import SimulatorConfigError, SimulatorError, SimulatorStopped, SimulatorTimeout
from simulator.faults import FaultEvent
from simulator.framing import LineFormat, nmea_checksum
from simulator.waveforms import WAVEFORMS

__all__ = [
    "WAVEFORMS",
    "FaultEvent",
    "LineFormat",
    "Simulator",
    "SimulatorConfigError",
    "SimulatorError",
    "SimulatorStopped",
    "SimulatorTimeout",
    "nmea_checksum",
]
