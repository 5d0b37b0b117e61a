"""Serial reader: lossless acquisition of a lab monitor's lines into atomic CSV batches, plus a live stream."""

from importlib import metadata

try:
    __version__ = metadata.version("sensor-box")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+unknown"
