"""The simulator's exceptions."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error raised by the simulator."""


class SimulatorConfigError(SimulatorError, ValueError):
    """An invalid simulator setting."""


class SimulatorTimeout(SimulatorError, TimeoutError):
    """The simulator did not reach the requested state in time."""


class SimulatorStopped(SimulatorError):
    """The simulator is not running (never started, stopped, or its writer failed)."""
