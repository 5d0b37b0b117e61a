"""Offline analysis of recorded sessions: load from disk or S3, transform, plot (``sensor-analysis``).

The main entry points, importable from here::

    from analysis import load, AnalysisSettings
    frame = load("/var/lib/sensor/sim0/20261125T090000Z", channels=["ch2"], start="10s", duration="5s")

Transformations live in ``analysis.transforms``, gaps in ``analysis.gaps``, statistics in ``analysis.stats``,
alignment in ``analysis.align`` and figures in ``analysis.plots``.
"""

from importlib import import_module
from typing import Any

# Imported on first use, so that `sensor-analysis --help` is quick and a box without the analysis
# extras (pandas, matplotlib, scipy) gets a clear message instead of an ImportError.
_EXPORTS = {
    "AnalysisError": "analysis.errors",
    "AnalysisSettings": "analysis.settings",
    "BadData": "analysis.errors",
    "BadTimeRange": "analysis.errors",
    "S3Unreachable": "analysis.errors",
    "SourceNotFound": "analysis.errors",
    "UnknownChannel": "analysis.errors",
    "load": "analysis.loading",
    "load_lazy": "analysis.loading",
    "plan": "analysis.loading",
}

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


def __getattr__(name: str) -> Any:
    """Import the public names on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
