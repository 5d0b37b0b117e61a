"""Deterministic multi-channel waveforms: every sample is a pure function of its index."""

from __future__ import annotations

import math

import numpy as np

WAVEFORMS = ("ecg", "sine", "noise", "mixed")
HEART_RATE_HZ = 1.2  # ~72 beats per minute
NOISE_TABLE = 8192  # noise repeats after this many samples (per channel, with a per-channel offset)

# A PQRST complex as Gaussian bumps: (centre as fraction of the beat, width as fraction, amplitude in mV).
_PQRST = (
    (0.16, 0.025, 0.12),  # P wave
    (0.245, 0.008, -0.12),  # Q
    (0.26, 0.010, 1.10),  # R
    (0.275, 0.010, -0.25),  # S
    (0.52, 0.045, 0.30),  # T wave
)


def ecg_shape(phase: np.ndarray) -> np.ndarray:
    """ECG-like value (mV) at beat phase in [0, 1)."""
    out = np.zeros_like(phase)
    for centre, width, amp in _PQRST:
        out += amp * np.exp(-0.5 * ((phase - centre) / width) ** 2)
    return out


class Waveforms:
    """Generates blocks of samples for ``channels`` channels of one waveform kind.

    ``sample_rate`` sets the time axis (sample n is at n / sample_rate seconds), so a block depends only on
    its first index and length: a rewound or replayed range gives the same values.
    """

    def __init__(self, kind: str, channels: int, sample_rate: float, freq: float = 1.0, seed: int = 0) -> None:
        if kind not in WAVEFORMS:
            raise ValueError(f"unknown waveform {kind!r}; choose one of {', '.join(WAVEFORMS)}")
        if channels < 1:
            raise ValueError("channels must be >= 1")
        if sample_rate <= 0:
            raise ValueError("sample_rate must be > 0")
        self.kind = kind
        self.channels = channels
        self.sample_rate = float(sample_rate)
        self.freq = float(freq)
        rng = np.random.default_rng(seed)
        self._noise = rng.normal(0.0, 1.0, size=(NOISE_TABLE, channels))
        self._noise_offset = rng.integers(0, NOISE_TABLE, size=channels)
        self._phase = rng.uniform(0.0, 2 * math.pi, size=channels)
        self._amp = rng.uniform(0.5, 2.0, size=channels)
        self._beat_jitter = rng.uniform(0.97, 1.03, size=channels)  # leads of one heart differ slightly
        self._kinds = [self._channel_kind(c) for c in range(channels)]

    def _channel_kind(self, c: int) -> str:
        """The waveform of channel index c (0-based); "mixed" alternates ecg and sine."""
        if self.kind != "mixed":
            return self.kind
        return "ecg" if c % 2 == 0 else "sine"

    def block(self, start: int, count: int) -> np.ndarray:
        """Samples ``start .. start+count-1`` as an array of shape (count, channels)."""
        n = np.arange(start, start + count, dtype=np.int64)
        t = n / self.sample_rate
        out = np.empty((count, self.channels))
        for c, kind in enumerate(self._kinds):
            noise = self._noise[(n + self._noise_offset[c]) % NOISE_TABLE, c]
            if kind == "ecg":
                phase = np.mod(t * HEART_RATE_HZ * self._beat_jitter[c], 1.0)
                out[:, c] = self._amp[c] * 0.8 * ecg_shape(phase) + 0.02 * noise
            elif kind == "sine":
                out[:, c] = self._amp[c] * np.sin(2 * math.pi * self.freq * t + self._phase[c]) + 0.01 * noise
            else:
                out[:, c] = 0.5 * noise
        return out
