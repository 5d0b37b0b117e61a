"""Serial reader: lossless acquisition of a lab monitor's lines into atomic CSV batches, plus a live stream."""

__version__ = "0.1.0"
