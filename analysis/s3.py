"""Read-only access to uploaded sessions on S3 (boto3), with short timeouts and clear errors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from analysis.errors import S3Unreachable, SourceNotFound
from analysis.settings import AnalysisSettings
from kernel.s3 import ClientConfig, make_client

log = logging.getLogger(__name__)

S3_SCHEME = "s3://"
_clients: dict[AnalysisSettings, Any] = {}
_clients_lock = threading.Lock()


def is_s3_url(source: object) -> bool:
    """True for an ``s3://bucket/key`` string."""
    return isinstance(source, str) and source.startswith(S3_SCHEME)


def parse_s3_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/some/prefix`` into (bucket, prefix without leading/trailing slash)."""
    rest = url[len(S3_SCHEME) :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise SourceNotFound(f"{url}: no bucket in S3 URL (expected s3://bucket/prefix/...)")
    return bucket, key.strip("/")


def client(settings: AnalysisSettings) -> Any:
    """A boto3 S3 client for these settings (one per settings value and process; clients are thread-safe)."""
    with _clients_lock:
        found = _clients.get(settings)
        if found is None:
            found = make_client(
                ClientConfig(
                    endpoint_url=settings.endpoint_url,
                    region=settings.region,
                    connect_timeout=settings.connect_timeout,
                    read_timeout=settings.read_timeout,
                    max_attempts=settings.retries,
                    max_pool_connections=max(10, settings.threads),
                    access_key_id=settings.access_key_id,
                    secret_access_key=settings.secret_access_key,
                )
            )
            _clients[settings] = found
        return found


def _translate(err: Exception, what: str, settings: AnalysisSettings) -> Exception:
    """Turn a botocore error into SourceNotFound or S3Unreachable with one clear line."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    where = settings.endpoint_url or "AWS S3"
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            return SourceNotFound(f"{what}: not found on S3")
        if code == "NoSuchBucket":
            return SourceNotFound(f"{what}: bucket does not exist on {where}")
        return S3Unreachable(f"{what}: S3 at {where} refused the request ({code or err})")
    if isinstance(err, NoCredentialsError):
        return S3Unreachable(
            f"{what}: no S3 credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile)"
        )
    if isinstance(err, BotoCoreError):
        return S3Unreachable(f"{what}: cannot reach S3 at {where} ({type(err).__name__})")
    return err


def list_keys(settings: AnalysisSettings, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """Yield (key, size) of every object under ``prefix`` (a folder-like prefix ending in "/")."""
    from botocore.exceptions import BotoCoreError, ClientError

    paginator = client(settings).get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], int(obj.get("Size", 0))
    except (BotoCoreError, ClientError) as err:
        raise _translate(err, f"s3://{bucket}/{prefix}", settings) from err


def get_bytes(settings: AnalysisSettings, bucket: str, key: str) -> bytes:
    """Whole object body as bytes."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        resp = client(settings).get_object(Bucket=bucket, Key=key)
        return resp["Body"].read()
    except (BotoCoreError, ClientError) as err:
        raise _translate(err, f"s3://{bucket}/{key}", settings) from err


def get_bytes_or_none(settings: AnalysisSettings, bucket: str, key: str) -> bytes | None:
    """Object body, or None when the key does not exist (other errors raise)."""
    try:
        return get_bytes(settings, bucket, key)
    except SourceNotFound as err:
        if "bucket does not exist" in str(err):
            raise
        return None
