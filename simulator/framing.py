"""How the simulated monitor frames its lines: columns, delimiter, sequence counter, checksum, line ending."""

from __future__ import annotations

import dataclasses

import numpy as np


def nmea_checksum(payload: bytes) -> int:
    """XOR of all bytes of ``payload`` (the NMEA-style line checksum)."""
    arr = np.frombuffer(payload, dtype=np.uint8)
    return int(np.bitwise_xor.reduce(arr)) if arr.size else 0


_FORBIDDEN_DELIMITERS = "\r\n*.-+0123456789eE"


@dataclasses.dataclass(frozen=True)
class LineFormat:
    """The line protocol the simulated device speaks."""

    channels: int = 4
    delimiter: str = ","
    seq: bool = False
    checksum: bool = False
    crlf: bool = False
    cr: bool = False  # CR-only line endings (many instruments' setting)
    decimals: int = 4

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise ValueError("channels must be >= 1")
        d = self.delimiter
        if len(d) != 1 or d in _FORBIDDEN_DELIMITERS or not (d.isprintable() or d == "\t") or not d.isascii():
            raise ValueError(f"delimiter {d!r} must be one ASCII character (or a tab) that cannot appear in a number")
        if self.crlf and self.cr:
            raise ValueError("choose CR LF or CR-only line endings, not both")
        if not 0 <= self.decimals <= 12:
            raise ValueError("decimals must be within 0..12")

    @property
    def eol(self) -> bytes:
        """The line ending on the wire."""
        return b"\r\n" if self.crlf else b"\r" if self.cr else b"\n"

    def columns(self) -> list[str]:
        """Column names, as the header line gives them."""
        return (["seq"] if self.seq else []) + [f"ch{i}" for i in range(1, self.channels + 1)]

    def header_text(self) -> str:
        """The header line as text (no checksum, no line ending)."""
        return self.delimiter.join(self.columns())

    def wire(self, text: str) -> bytes:
        """Frame one line of text for the wire: checksum suffix (when enabled) and line ending."""
        payload = text.encode("ascii")
        if self.checksum:
            payload += b"*%02X" % nmea_checksum(payload)
        return payload + self.eol

    def format_block(self, seq0: int, values: np.ndarray) -> tuple[bytes, bytes, list[int]]:
        """Format rows of values whose first sequence number is ``seq0``.

        Returns (wire bytes, record text with "\\n" after each line, end offset of each line in the wire bytes).
        """
        d = self.delimiter
        vfmt = d.join([f"%.{self.decimals}f"] * values.shape[1])
        rows = values.tolist()
        if self.seq:
            fmt = "%d" + d + vfmt
            texts = [fmt % (s, *r) for s, r in zip(range(seq0, seq0 + len(rows)), rows)]
        else:
            texts = [vfmt % tuple(r) for r in rows]
        record = ("\n".join(texts) + "\n").encode("ascii") if texts else b""
        if not self.checksum:
            eol = self.eol.decode("ascii")
            wire = record if eol == "\n" else record.replace(b"\n", self.eol)
            step = len(eol)
            ends, pos = [], 0
            for t in texts:
                pos += len(t) + step
                ends.append(pos)
            return wire, record, ends
        sums = _checksums(record, texts)
        eol = self.eol.decode("ascii")
        wire_lines = [f"{t}*{c:02X}{eol}" for t, c in zip(texts, sums)]
        ends, pos = [], 0
        for w in wire_lines:
            pos += len(w)
            ends.append(pos)
        return "".join(wire_lines).encode("ascii"), record, ends


def _checksums(record: bytes, texts: list[str]) -> list[int]:
    """Per-line XOR checksums of "\\n"-joined lines, vectorised over the whole block."""
    arr = np.frombuffer(record, dtype=np.uint8)
    starts = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        starts[1:] = np.cumsum([len(t) + 1 for t in texts[:-1]])
    # Each segment runs from a line start to the next line start and so includes one "\n" (0x0A): undo it.
    return (np.bitwise_xor.reduceat(arr, starts) ^ 0x0A).tolist()
