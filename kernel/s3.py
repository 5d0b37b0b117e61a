"""The one boto3 S3 client factory, used by the uploader (writes) and the analysis (reads).

Every client gets explicit timeouts and bounded retries; checksums only when required (several
S3-compatible servers reject the CRC headers boto3 >= 1.36 sends by default); path-style addressing and a
``us-east-1`` region fallback for a custom endpoint (MinIO, Ceph, rclone serve s3). Credentials come from
the config when given, else from boto3's default chain; they are never logged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

CHECKSUM_MODES = ("when_required", "when_supported")
FALLBACK_REGION = "us-east-1"


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """How to reach S3: endpoint, region, timeouts, retries, checksum mode, pool size, credentials."""

    endpoint_url: str | None = None
    region: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    checksum_mode: str = "when_required"
    max_pool_connections: int = 10
    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)


def make_client(config: ClientConfig) -> Any:
    """A thread-safe boto3 S3 client for ``config``."""
    import boto3
    import botocore.session
    from botocore.config import Config

    boto_config = Config(
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retries={"max_attempts": config.max_attempts, "mode": "standard"},
        request_checksum_calculation=config.checksum_mode,
        response_checksum_validation=config.checksum_mode,
        max_pool_connections=config.max_pool_connections,
        # Every PUT carries a signed Content-MD5 that the server checks, so hashing the body a second
        # time for the signature (botocore does that only on plain-http endpoints) adds nothing.
        s3={
            "payload_signing_enabled": False,
            **({"addressing_style": "path"} if config.endpoint_url else {}),
        },
    )
    core = botocore.session.get_session()
    # No caller reads response timestamps (LastModified); leaving them as text skips dateutil on every HEAD
    # and listed object, a visible share of the client's CPU per upload.
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    session = boto3.session.Session(botocore_session=core)
    region = config.region or session.region_name or (FALLBACK_REGION if config.endpoint_url else None)
    return session.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=region,
        config=boto_config,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
    )
