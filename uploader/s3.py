"""S3 access with boto3: verified, idempotent PUTs and the translation of failures into our errors.

Integrity: every PUT carries Content-MD5 (checked by AWS and by S3-compatible servers), the object's
sha256 travels as user metadata, and a HEAD afterwards must show the same size, and the same ETag
(single-part PUT ETag is the MD5) or metadata sha256 where the server returns them. A HEAD before
the PUT skips objects that are already there and identical, so a rerun uploads nothing twice.
Credentials come from boto3's default chain and are never logged.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from kernel import s3
from kernel.objects import META_SHA256
from uploader.errors import IntegrityError, S3AuthError, S3BucketError, S3Error, S3Unavailable
from uploader.settings import Settings

log = logging.getLogger(__name__)

_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
    "RequestLimitExceeded",
}
_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "InvalidSecurity",
    "403",
    "AuthorizationHeaderMalformed",
    "AllAccessDisabled",
}
_BUCKET_CODES = {"NoSuchBucket", "PermanentRedirect", "301", "IllegalLocationConstraintException"}


def translate(err: Exception, what: str) -> S3Error:
    """Map a boto3/botocore failure to our hierarchy, with a message that never contains secrets."""
    if isinstance(err, (NoCredentialsError, PartialCredentialsError)):
        return S3AuthError(
            f"{what}: no usable S3 credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "or the shared credentials file)"
        )
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT_CODES or status >= 500:
            return S3Unavailable(f"{what}: server answered {code or status}")
        if code in _AUTH_CODES or status == 403:
            return S3AuthError(
                f"{what}: access refused ({code or status}): check the access key, secret and "
                "permissions (s3:PutObject, s3:GetObject, s3:ListBucket)"
            )
        if code in _BUCKET_CODES:
            return S3BucketError(
                f"{what}: bucket problem ({code}): the bucket does not exist or is in another region"
            )
        return S3Error(f"{what}: {code or status}: {err.response.get('Error', {}).get('Message', '')}")
    if isinstance(err, BotoCoreError):
        return S3Unavailable(f"{what}: {type(err).__name__}: {err}")
    return S3Error(f"{what}: {type(err).__name__}: {err}")


def make_client(settings: Settings) -> Any:
    """The uploader's boto3 client (kernel.s3): its timeouts, retries, checksum mode and pool size."""
    from botocore.handlers import add_expect_header

    client = s3.make_client(
        s3.ClientConfig(
            endpoint_url=settings.endpoint_url,
            region=settings.region,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_attempts=settings.max_attempts,
            checksum_mode=settings.checksum_mode,
            max_pool_connections=settings.concurrency + 4,
        )
    )
    # PUT bodies stream from their files; without "Expect: 100-continue" a PUT costs no extra round trip.
    client.meta.events.unregister("before-call.s3", add_expect_header)
    return client


class S3Store:
    """One bucket, seen through a thread-safe boto3 client."""

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.bucket = settings.bucket
        self.client = client or make_client(settings)

    def probe(self) -> None:
        """One cheap request telling an outage apart from bad credentials or a missing bucket."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status == 404:
                raise S3BucketError(f"bucket {self.bucket!r} does not exist") from err
            if status == 403:  # HEAD answers carry no error code: ask once more with a GET to name the cause
                self._explain_403(err)
            raise translate(err, f"bucket {self.bucket!r}") from err
        except (BotoCoreError, OSError) as err:
            raise translate(err, f"bucket {self.bucket!r}") from err

    def _explain_403(self, head_error: ClientError) -> None:
        """Raise the coded error of a ListObjectsV2 (e.g. SignatureDoesNotMatch) after a bare HEAD 403."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "").isalpha():
                raise translate(err, f"bucket {self.bucket!r}") from head_error
        except (BotoCoreError, OSError):
            pass

    def head(self, key: str) -> dict[str, Any] | None:
        """The object's HEAD response, or None if it does not exist."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise translate(err, f"HEAD {key}") from err
        except (BotoCoreError, OSError) as err:
            raise translate(err, f"HEAD {key}") from err

    def listing(self, prefix: str, start_after: str = "") -> dict[str, dict[str, Any]] | None:
        """Size and ETag of the objects under a prefix sorting after ``start_after`` (one request per 1000
        keys), or None if not allowed.

        Used instead of one HEAD per object before uploading a session's batches.
        """
        found: dict[str, dict[str, Any]] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, StartAfter=start_after
            ):
                for obj in page.get("Contents", []):
                    found[obj["Key"]] = {"ContentLength": obj["Size"], "ETag": obj.get("ETag", "")}
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
                return None  # no s3:ListBucket: fall back to HEAD per object
            raise translate(err, f"LIST {prefix}") from err
        except (BotoCoreError, OSError) as err:
            raise translate(err, f"LIST {prefix}") from err
        return found

    @staticmethod
    def matches(head: dict[str, Any], size: int, sha256: str, md5_b64: str) -> bool:
        """True when a HEAD response describes exactly these bytes (as far as the server tells)."""
        if int(head.get("ContentLength", -1)) != size:
            return False
        meta = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}  # some servers capitalise keys
        meta_sha = meta.get(META_SHA256)
        if meta_sha is not None and meta_sha != sha256:
            return False
        etag = str(head.get("ETag", "")).strip('"')
        return not (len(etag) == 32 and "-" not in etag and etag != base64.b64decode(md5_b64).hex())

    def put_verified(
        self,
        key: str,
        source: Path | bytes,
        size: int,
        sha256: str,
        md5_b64: str,
        content_type: str,
        metadata: dict[str, str],
        listing: dict[str, dict[str, Any]] | None = None,
    ) -> tuple[bool, dict[str, Any]]:
        """Upload unless an identical object exists; verify by HEAD. Returns (uploaded, head).

        ``listing`` (from :meth:`listing`) replaces the HEAD before the PUT: a key absent from it is new.
        """
        listed = listing.get(key) if listing is not None else None
        if listing is not None and listed is None:
            existing = None  # the listing shows the key is free: no HEAD needed
        elif listed is not None and not _md5_etag(listed):
            existing = self.head(key)  # the listed ETag is no MD5 (multipart, SSE-KMS): ask properly
        else:
            existing = listed if listed is not None else self.head(key)
        if existing is not None:
            if self.matches(existing, size, sha256, md5_b64):
                return False, existing
            log.warning("replacing s3://%s/%s: it differs from the local file", self.bucket, key)
        meta = {**metadata, META_SHA256: sha256}
        try:
            if isinstance(source, bytes):
                self._put(key, source, md5_b64, content_type, meta)
            else:
                with open(source, "rb") as body:
                    self._put(key, body, md5_b64, content_type, meta)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("BadDigest", "InvalidDigest"):
                raise IntegrityError(f"PUT {key}: the server saw different bytes (BadDigest)") from err
            raise translate(err, f"PUT {key}") from err
        except (BotoCoreError, OSError) as err:
            raise translate(err, f"PUT {key}") from err
        head = self.head(key)
        if head is None or not self.matches(head, size, sha256, md5_b64):
            raise IntegrityError(f"verify {key}: HEAD after PUT does not match the local file")
        return True, head

    def _put(self, key: str, body: Any, md5_b64: str, content_type: str, meta: dict[str, str]) -> None:
        """One PutObject carrying Content-MD5."""
        self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentMD5=md5_b64,
            ContentType=content_type,
            Metadata=meta,
        )


def _md5_etag(head: dict[str, Any]) -> bool:
    """True when the ETag is a plain MD5 (single-part upload without KMS)."""
    etag = str(head.get("ETag", "")).strip('"')
    return len(etag) == 32 and "-" not in etag
