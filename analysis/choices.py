"""The choices the command line offers, kept free of heavy imports so that `--help` stays quick."""

from __future__ import annotations

ALIGN_METHODS = ("start", "time", "xcorr")
EXPORT_FORMATS = ("parquet", "csv")
