"""The simulator's exceptions."""

from __future__ import annotations

from kernel.settings import SettingsError


class SimulatorError(Exception):
    """Base class of every error raised by the simulator."""


class SimulatorConfigError(SimulatorError, SettingsError):
    """An invalid simulator setting (also a ValueError)."""


class SimulatorTimeout(SimulatorError, TimeoutError):
    """The simulator did not reach the requested state in time."""


class SimulatorStopped(SimulatorError):
    """The simulator is not running (never started, stopped, or its writer failed)."""
