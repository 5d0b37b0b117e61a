"""Helpers of the analysis tests: upload sessions in the S3 layout, inspect images."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from analysis.synthetic import parquet_bytes
from reader import format as fmt


def upload_session(
    client: Any, bucket: str, prefix: str, session_dir: Path, form: str, with_batch_list: bool = True
) -> str:
    """Upload a local session in the uploader's layout; returns its s3:// URL."""
    manifest = fmt.SessionManifest.load(session_dir)
    base = f"{prefix}/{manifest.device_id}/{manifest.session_id}"
    entries = []
    for path in fmt.committed_batches(session_dir):
        raw = path.read_bytes()
        frame = fmt.read_batch_frame(path)
        if form == "parquet":
            body = parquet_bytes(frame)
        elif form == "csv.gz":
            body = gzip.compress(raw)
        else:
            body = raw
        key = f"{base}/{path.name.removesuffix('.csv')}.{form}"
        client.put_object(Bucket=bucket, Key=key, Body=body)
        entries.append(
            {
                "name": path.name,
                "key": key,
                "format": form,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "rows": len(frame),
                "first_host_time": fmt.format_time(frame.index[0].to_pydatetime()),
                "last_host_time": fmt.format_time(frame.index[-1].to_pydatetime()),
            }
        )
    doc: dict[str, Any] = json.loads(manifest.to_json())
    if with_batch_list:
        doc["batches"] = entries
    client.put_object(Bucket=bucket, Key=f"{base}/{fmt.MANIFEST_NAME}", Body=json.dumps(doc).encode())
    return f"s3://{bucket}/{base}"


def hex_rgb(color: str) -> np.ndarray:
    """'#1f77b4' -> array of floats 0..1."""
    return np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def colour_pixels(image: np.ndarray, color: str, tol: float = 0.08) -> int:
    """Number of pixels of an RGB(A) image within ``tol`` of ``color``."""
    rgb = image[..., :3].astype("float64")
    if rgb.max() > 1.0:
        rgb = rgb / 255.0
    return int(np.count_nonzero(np.all(np.abs(rgb - hex_rgb(color)) < tol, axis=-1)))
