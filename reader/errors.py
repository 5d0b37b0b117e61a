"""The reader's exception hierarchy: one base class; each error is translated at its boundary (`from err`)."""

from __future__ import annotations

from kernel.settings import SettingsError as KernelSettingsError


class ReaderError(Exception):
    """Base class of every error the reader raises on purpose."""


class SettingsError(ReaderError, KernelSettingsError):
    """A setting is missing or invalid; the message names its flag and variable."""


class PortGone(ReaderError):
    """The port vanished or failed (unplugged adapter, closed pty)."""


class PortUnavailable(ReaderError):
    """The port cannot be opened now (missing, busy or no permission)."""


class DiskError(ReaderError, OSError):
    """Writing to the data disk failed (ENOSPC, EIO, ...); the rows stay in memory for a retry."""


class DeviceBusy(ReaderError, RuntimeError):
    """Another reader process is recording the same device."""
