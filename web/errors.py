"""Exceptions of the web app."""

from __future__ import annotations

from kernel.settings import SettingsError


class WebError(Exception):
    """Base class of sensor-web's errors."""


class ConfigError(WebError, SettingsError):
    """The environment or the command line holds an invalid setting."""
