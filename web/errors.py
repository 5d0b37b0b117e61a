"""Exceptions of the web app."""


class WebError(Exception):
    """Base class of sensor-web's errors."""


class ConfigError(WebError):
    """The environment or the command line holds an invalid setting."""
