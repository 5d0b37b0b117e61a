"""Uploader: verified, idempotent upload of committed batches to S3, plus disk-quota cleanup.

Data flow: committed batch files (kernel.layout, kernel.batch) → Luigi DAG (local scheduler) → Dask processes
(validate, stats, convert) → boto3 upload with checksum + HEAD verification → session manifest →
``.touched`` marker → eligible for quota cleanup.
"""
