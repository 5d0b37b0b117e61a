"""Offline analysis of recorded sessions: load from disk or S3, transform, plot (``sensor-analysis``).

The main entry points, importable from here::

    from analysis import load, AnalysisSettings
    frame = load("/var/lib/sensor/sim0/20261125T090000Z", channels=["ch2"], start="10s", duration="5s")

Transformations live in ``analysis.transforms``, gaps in ``analysis.gaps``, statistics in ``analysis.stats``,
alignment in ``analysis.align`` and figures in ``analysis.plots``.
"""

from analysis.errors import (
    AnalysisError,
    BadData,
    BadTimeRange,
    S3Unreachable,
    SourceNotFound,
    UnknownChannel,
)
from analysis.loading import load, load_lazy, plan
from analysis.settings import AnalysisSettings

__all__ = [
    "AnalysisError",
    "AnalysisSettings",
    "BadData",
    "BadTimeRange",
    "S3Unreachable",
    "SourceNotFound",
    "UnknownChannel",
    "load",
    "load_lazy",
    "plan",
]
