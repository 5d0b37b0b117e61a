"""Bad lines a real monitor or a flaky cable produces: pure builders of the bytes to inject."""

from __future__ import annotations

import dataclasses
import random

FAULT_KINDS = ("garbage", "truncated", "overlong", "nul", "line")


@dataclasses.dataclass(frozen=True)
class FaultEvent:
    """One injected fault: what it was, its exact bytes, and how many valid lines had been sent before it."""

    kind: str
    data: bytes
    after: int  # number of valid data lines sent before the fault (the sequence position)


def garbage(nbytes: int, rng: random.Random, eol: bytes = b"\n") -> bytes:
    """``nbytes`` random bytes (at least one non-ASCII, no line ending inside), then a line ending."""
    if nbytes < 1:
        raise ValueError("garbage needs at least 1 byte")
    body = bytearray(rng.choice(_GARBAGE_ALPHABET) for _ in range(nbytes))
    body[0] = rng.randrange(0x80, 0x100)  # never valid ASCII text
    return bytes(body) + eol


_GARBAGE_ALPHABET = bytes(b for b in range(256) if b not in (0x0A, 0x0D))


def truncated(wire_line: bytes, delimiter: bytes, eol: bytes = b"\n") -> bytes:
    """A valid line cut short (at most half of it, and before its last field), then a line ending.

    With a single field and no checksum the cut line may still look like a number: use more channels,
    ``seq`` or ``checksum`` when the reader must reject it.
    """
    text = wire_line.rstrip(b"\r\n")
    cut = len(text) // 2
    last = text.rfind(delimiter)
    if last > 0:
        cut = min(cut, last)
    return text[: max(cut, 1)] + eol


def overlong_body(nbytes: int) -> bytes:
    """``nbytes`` of number-like text with no line ending (the line ending comes later)."""
    if nbytes < 1:
        raise ValueError("overlong needs at least 1 byte")
    pattern = b"1.2345,"
    return (pattern * (nbytes // len(pattern) + 1))[:nbytes]


def with_nul(wire_line: bytes, eol: bytes = b"\n", count: int = 3) -> bytes:
    """A valid-looking line with NUL bytes in its middle."""
    text = wire_line.rstrip(b"\r\n")
    mid = len(text) // 2
    return text[:mid] + b"\0" * count + text[mid:] + eol
