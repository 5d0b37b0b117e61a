"""Exceptions of the analysis package: one base class, one subclass per thing a user can get wrong."""

from __future__ import annotations

from kernel.settings import SettingsError as KernelSettingsError


class AnalysisError(Exception):
    """Base class of every error the analysis library raises on purpose."""


class SourceNotFound(AnalysisError):
    """The session, device folder, data directory or S3 location does not exist or holds no batches."""


class BadTimeRange(AnalysisError):
    """A start/end/duration that is malformed, empty, or outside the recorded data."""


class UnknownChannel(AnalysisError):
    """A channel name that the selected sessions do not have."""


class S3Unreachable(AnalysisError):
    """The S3 endpoint did not answer, refused the credentials, or the bucket is missing."""


class BadData(AnalysisError):
    """A batch or object that cannot be parsed as the recorded format."""


class SettingsError(AnalysisError, KernelSettingsError):
    """A setting with an invalid value; the message names its flag and variable."""
