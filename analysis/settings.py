"""Settings of the analysis tools: one frozen object built from the environment and CLI flags at the edge."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from analysis.errors import AnalysisError

# (environment variable, settings field, help) — documented in --help and docs/analysis.md.
ENV_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("SENSOR_S3_ENDPOINT_URL", "endpoint_url", "S3 endpoint URL (else AWS_ENDPOINT_URL, else AWS)"),
    ("AWS_ENDPOINT_URL", "endpoint_url", "fallback S3 endpoint URL (boto3's standard variable)"),
    ("SENSOR_S3_REGION", "region", "S3 region name (else AWS_DEFAULT_REGION / boto3 default)"),
    ("SENSOR_S3_CONNECT_TIMEOUT", "connect_timeout", "seconds to wait for an S3 connection (default 3)"),
    ("SENSOR_S3_READ_TIMEOUT", "read_timeout", "seconds to wait for S3 data (default 30)"),
    ("SENSOR_S3_RETRIES", "retries", "S3 attempts per request (default 2)"),
    ("SENSOR_ANALYSIS_THREADS", "threads", "parallel file readers (default 2 x CPUs, max 16)"),
    ("SENSOR_ANALYSIS_SCHEDULER", "scheduler", "dask.distributed scheduler address for --lazy work"),
)


class SettingsError(AnalysisError):
    """A setting with an invalid value."""


def _default_threads() -> int:
    return max(2, min(16, 2 * (os.cpu_count() or 1)))


@dataclasses.dataclass(frozen=True)
class AnalysisSettings:
    """How to reach S3 and how much parallelism to use; library functions take one of these."""

    endpoint_url: str | None = None
    region: str | None = None
    connect_timeout: float = 3.0
    read_timeout: float = 30.0
    retries: int = 2
    threads: int = dataclasses.field(default_factory=_default_threads)
    scheduler: str | None = None
    # Explicit S3 credentials for library callers; None uses boto3's chain (AWS_ACCESS_KEY_ID, profiles...).
    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.connect_timeout > 0 or not self.read_timeout > 0:
            raise SettingsError("S3 timeouts must be > 0 seconds")
        if self.retries < 1:
            raise SettingsError("S3 retries must be >= 1 (attempts per request)")
        if self.threads < 1:
            raise SettingsError("threads must be >= 1")
        if self.endpoint_url is not None and not self.endpoint_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"S3 endpoint URL must start with http:// or https://, not {self.endpoint_url!r}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str], **flags: object) -> AnalysisSettings:
        """Build settings from environment variables, then CLI flags (flags that are None are ignored)."""
        values: dict[str, object] = {}
        endpoint = env.get("SENSOR_S3_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL")
        if endpoint:
            values["endpoint_url"] = endpoint
        if env.get("SENSOR_S3_REGION"):
            values["region"] = env["SENSOR_S3_REGION"]
        for name, field, conv in (
            ("SENSOR_S3_CONNECT_TIMEOUT", "connect_timeout", float),
            ("SENSOR_S3_READ_TIMEOUT", "read_timeout", float),
            ("SENSOR_S3_RETRIES", "retries", int),
            ("SENSOR_ANALYSIS_THREADS", "threads", int),
        ):
            raw = env.get(name)
            if raw:
                try:
                    values[field] = conv(raw)
                except ValueError as err:
                    raise SettingsError(f"{name}={raw!r} is not a valid {conv.__name__}") from err
        if env.get("SENSOR_ANALYSIS_SCHEDULER"):
            values["scheduler"] = env["SENSOR_ANALYSIS_SCHEDULER"]
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
