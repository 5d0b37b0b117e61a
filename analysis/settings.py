"""Settings of the analysis tools: the field table and the one frozen object built from it at the edge."""

from __future__ import annotations

import dataclasses
import os
from argparse import Namespace
from collections.abc import Mapping

from analysis.errors import SettingsError
from kernel import settings as ks
from kernel.batch import SAMPLE_TIME_COLUMN, TIME_COLUMN
from kernel.settings import Field

__all__ = ["TABLE", "TIME_AXES", "AnalysisSettings", "SettingsError", "time_column"]


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
    time_axis: str = "sample"  # the loaded frames' index: "sample" (modelled sample time) or "host" (receive time)
    log_level: str = "WARNING"
    # Explicit S3 credentials for library callers; None uses boto3's chain (AWS_ACCESS_KEY_ID, profiles...).
    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        TABLE.validate(self)  # library callers build one directly: the same checks as the command line

    @classmethod
    def from_env(cls, env: Mapping[str, str], **flags: object) -> AnalysisSettings:
        """Build settings from environment variables, then CLI flags (flags that are None are ignored)."""
        values = TABLE.read(Namespace(**flags), env)
        values.update({k: v for k, v in flags.items() if v is not None and k not in values})
        return cls(**values)


TIME_AXES = ("sample", "host")


def time_column(settings: AnalysisSettings) -> str:
    """The batch column the settings' time axis reads."""
    return SAMPLE_TIME_COLUMN if settings.time_axis == "sample" else TIME_COLUMN


def _http_url(url: str) -> str | None:
    return None if url.startswith(("http://", "https://")) else f"must start with http:// or https:// (got {url!r})"


FIELDS = (
    Field("endpoint_url", "SENSOR_S3_ENDPOINT_URL", "--endpoint-url", ks.stripped, also=("AWS_ENDPOINT_URL",),
          metavar="URL", check=_http_url, shown_default="AWS", help="S3 endpoint (e.g. `http://nas:9000`)"),
    Field("region", "SENSOR_S3_REGION", None, ks.stripped, shown_default="boto3's", help="region name"),
    Field("connect_timeout", "SENSOR_S3_CONNECT_TIMEOUT", None, ks.number, check=ks.above(0),
          help="seconds to connect"),
    Field("read_timeout", "SENSOR_S3_READ_TIMEOUT", None, ks.number, check=ks.above(0),
          help="seconds to wait for data"),
    Field("retries", "SENSOR_S3_RETRIES", None, ks.integer, check=ks.at_least(1), help="attempts per S3 request"),
    Field("threads", "SENSOR_ANALYSIS_THREADS", "--threads", ks.integer, check=ks.at_least(1), metavar="N",
          shown_default="2 × CPUs (2..16)", help="files read in parallel"),
    Field("scheduler", "SENSOR_ANALYSIS_SCHEDULER", "--scheduler", ks.stripped, metavar="ADDRESS",
          help="dask.distributed scheduler for lazy loads and `overview`"),
    Field("time_axis", "SENSOR_ANALYSIS_TIME", "--time", ks.one_of(*TIME_AXES), choices=TIME_AXES, metavar="AXIS",
          help="time axis of loaded data: `sample` (the reader's sample clock; host time for batches without "
          "one) or `host` (when each bulk read was received)"),
    Field("log_level", None, "--log-level", ks.log_level, check=ks.known_level, metavar="LEVEL",
          help="log level (stderr)"),
    Field("aws_access_key_id", "AWS_ACCESS_KEY_ID", external=True, help="S3 access key id (boto3's usual chain)"),
    Field("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", external=True, help="S3 secret access key"),
    Field("aws_profile", "AWS_PROFILE", external=True, help="a profile of the shared credentials file instead"),
)

TABLE = ks.Table("analysis", FIELDS, AnalysisSettings, SettingsError)
