"""Uploader: verified, idempotent upload of committed batches to S3, plus disk-quota cleanup.

Data flow: committed batch files (kernel.layout, kernel.batch) → Luigi task per chunk (local scheduler) → Dask
threads (validate, stats, convert) → upload threads: boto3 PUT with checksum + HEAD verification → session manifest →
``.touched`` marker → eligible for quota cleanup.
"""
