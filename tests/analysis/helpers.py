"""Helpers of the analysis tests: inspect images."""

from __future__ import annotations

import numpy as np


def hex_rgb(color: str) -> np.ndarray:
    """'#1f77b4' -> array of floats 0..1."""
    return np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def colour_pixels(image: np.ndarray, color: str, tol: float = 0.08) -> int:
    """Number of pixels of an RGB(A) image within ``tol`` of ``color``."""
    rgb = image[..., :3].astype("float64")
    if rgb.max() > 1.0:
        rgb = rgb / 255.0
    return int(np.count_nonzero(np.all(np.abs(rgb - hex_rgb(color)) < tol, axis=-1)))
