"""The uploader's exception hierarchy."""

from __future__ import annotations

from kernel.settings import SettingsError as KernelSettingsError


class UploaderError(Exception):
    """Base class of every error raised by the uploader."""


class SettingsError(UploaderError, KernelSettingsError):
    """A setting is missing or invalid (message names the flag and the variable)."""


class AlreadyRunning(UploaderError):
    """Another uploader holds the lock for this data directory."""


class Stopped(UploaderError):
    """Work was abandoned because a stop was requested (SIGTERM); it is redone on the next run."""


class BatchError(UploaderError):
    """One batch could not be processed or uploaded; it is retried on the next pass."""


class IntegrityError(BatchError):
    """The stored object does not match the local file (size or checksum)."""


class S3Error(UploaderError):
    """An S3 request failed."""


class S3Unavailable(S3Error):
    """The S3 endpoint is unreachable, timing out, or answering 5xx/SlowDown: an outage, retried with backoff."""


class S3ConfigError(S3Error):
    """S3 refuses us for a reason a retry alone will not fix: bad credentials, missing bucket, wrong region."""


class S3AuthError(S3ConfigError):
    """The credentials are missing, unknown or wrong, or lack permission."""


class S3BucketError(S3ConfigError):
    """The bucket does not exist or is in another region."""
