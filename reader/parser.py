"""Line framing and validation: a pure function of bytes (feed bytes, get accepted lines and rejects)."""

from __future__ import annotations

import dataclasses
import re
from functools import reduce
from operator import xor

from reader.format import SEQ_COLUMN

_NUMBER = rb"[ ]*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?[ ]*"
_COUNTER = rb"[ ]*\d+[ ]*"
# The block fast path uses the plain forms most devices send, with possessive quantifiers (the grammar
# never needs to backtrack): about 2.5x faster to match than the lenient forms above, against which lines
# that fail the fast path are re-checked one by one.
_FAST_NUMBER = rb"-?\d++\.?+\d*+(?:[eE][-+]?\d++)?+"
_FAST_COUNTER = rb"\d++"
_NUMBER_RE = re.compile(_NUMBER)
_NAME_RE = re.compile(rb"[ ]*[A-Za-z_][A-Za-z0-9_.()\[\]-]*[ ]*")
_CHECKSUM_RE = re.compile(rb"^(.*)\*([0-9A-Fa-f]{2})$", re.DOTALL)
_ALLOWED_TEXT = bytes(range(0x20, 0x7F))


@dataclasses.dataclass(frozen=True)
class ParserConfig:
    """How the device frames its lines."""

    delimiter: bytes = b","
    seq: bool = False  # first column is a sequence counter (also implied by a header naming it "seq")
    checksum: bool = False  # every line ends with NMEA-style "*HH" (XOR of the bytes before "*")
    max_line: int = 4096  # longer lines are rejected; memory stays bounded


@dataclasses.dataclass(frozen=True)
class Reject:
    """A line that was not accepted, kept verbatim (overlong lines: their first max_line bytes)."""

    reason: str
    data: bytes


@dataclasses.dataclass
class ParseResult:
    """What one feed produced: accepted lines as one block, rejects, and sequence-counter findings."""

    block: bytes = b""  # accepted lines, comma-delimited, each ending in "\n"
    count: int = 0
    rejects: list[Reject] = dataclasses.field(default_factory=list)
    gaps: int = 0  # sequence discontinuities seen
    missing: int = 0  # sequence numbers skipped (forward gaps only)


def _leading_int(line: bytes) -> int:
    """The integer in a line's first field (the sequence counter)."""
    comma = line.find(b",")
    return int(line[:comma] if comma >= 0 else line)


def nmea_checksum(payload: bytes) -> int:
    """XOR of all bytes: the NMEA-style line checksum."""
    return reduce(xor, payload, 0)


class LineParser:
    """Splits a byte stream into lines and sorts them into accepted data and rejects.

    Columns come from a header line (all fields are names) or, failing that, from the first two data lines
    that agree on their shape. The first line of a connection may be the tail of a line cut when the port
    opened: it is accepted only if the line after it confirms it (see ``_continues``), else rejected.
    """

    def __init__(self, config: ParserConfig = ParserConfig()) -> None:
        self.config = config
        self.columns: list[str] | None = None
        self.seq = config.seq
        self.last_seq: int | None = None
        self._tail = b""
        self._discarding = False
        self._pending: bytes | None = None  # first data line while the shape is unknown
        self._line_re: re.Pattern[bytes] | None = None
        self._block_re: re.Pattern[bytes] | None = None

    # -- public -------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> ParseResult:
        """Consume bytes; return the complete lines they finished."""
        res = ParseResult()
        max_line = self.config.max_line
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return res
            data = data[nl + 1 :]
            self._discarding = False
        if self._tail:
            data = self._tail + data
        end = data.rfind(b"\n") + 1
        complete, tail = data[:end], data[end:]
        if len(tail) > max_line:
            res.rejects.append(Reject("overlong", tail[:max_line]))
            self._discarding = True
            tail = b""
        self._tail = tail
        if complete:
            self._process(complete, res)
        return res

    def finish(self) -> ParseResult:
        """End of stream: flush a held first line and reject an unterminated tail."""
        res = ParseResult()
        if self._pending is not None:
            line, self._pending = self._pending, None
            self._adopt_shape(line.count(b",") + 1, None)
            self._classify(line, line, res)
        if self._tail:
            res.rejects.append(Reject("incomplete at end", self._tail))
            self._tail = b""
        self._discarding = False
        return res

    # -- internals ----------------------------------------------------------------------------------
    def _process(self, complete: bytes, res: ParseResult) -> None:
        if b"\r" in complete:
            complete = complete.replace(b"\r\n", b"\n")
        delim = self.config.delimiter
        if self.config.checksum or (delim != b"," and b"," in complete):
            return self._slow(complete, res, normalise=delim != b",")
        if delim != b",":
            complete = complete.replace(delim, b",")
        if self._block_re is not None and self._block_re.fullmatch(complete):
            count = complete.count(b"\n")
            if not self.seq or self._seq_block_ok(complete, count):
                res.block += complete
                res.count += count
                return
        self._slow(complete, res, normalise=False)

    def _seq_block_ok(self, block: bytes, count: int) -> bool:
        """Fast continuity check: the first and last counters span exactly the block's line count."""
        first = _leading_int(block[: block.index(b"\n")])
        last = _leading_int(block[block.rfind(b"\n", 0, len(block) - 1) + 1 : -1])
        if (self.last_seq is not None and first != self.last_seq + 1) or last - first != count - 1:
            return False
        self.last_seq = last
        return True

    def _slow(self, complete: bytes, res: ParseResult, normalise: bool) -> None:
        lines = complete.split(b"\n")
        lines.pop()
        delim = self.config.delimiter
        for raw in lines:
            if len(raw) > self.config.max_line:
                res.rejects.append(Reject("overlong", raw[: self.config.max_line]))
                continue
            line: bytes | None = raw
            if self.config.checksum:
                line = self._strip_checksum(raw, res)
                if line is None:
                    continue
            if normalise:
                if b"," in line:
                    res.rejects.append(Reject("stray comma", raw))
                    continue
                line = line.replace(delim, b",")
            self._classify(line, raw, res)

    def _strip_checksum(self, line: bytes, res: ParseResult) -> bytes | None:
        m = _CHECKSUM_RE.match(line)
        if not m:
            res.rejects.append(Reject("checksum missing", line))
            return None
        payload, given = m.group(1), int(m.group(2), 16)
        if nmea_checksum(payload) != given:
            res.rejects.append(Reject("checksum mismatch", line))
            return None
        return payload

    def _classify(self, line: bytes, raw: bytes, res: ParseResult) -> None:
        if self._line_re is not None:
            if self._line_re.fullmatch(line):
                self._accept_one(line, res)
            elif self._is_header(line):
                if self._names(line) != self.columns:
                    res.rejects.append(Reject("header mismatch", raw))
                # else: a repeated identical header is framing, not data
            else:
                res.rejects.append(Reject(self._reason(raw, line), raw))
            return
        # The shape is not known yet: learn it from a header or two agreeing data lines.
        if self._is_header(line):
            if self._pending is not None:
                res.rejects.append(Reject("before header", self._pending))
                self._pending = None
            names = self._names(line)
            self._adopt_shape(len(names), names)
            return
        if not line or not all(_NUMBER_RE.fullmatch(f) for f in line.split(b",")):
            res.rejects.append(Reject(self._reason(raw, line), raw))
            return
        if self._pending is None:
            self._pending = line
            return
        if self._pending.count(b",") != line.count(b","):
            res.rejects.append(Reject("field count", self._pending))
            self._pending = line
            return
        if not self._continues(self._pending, line):
            res.rejects.append(Reject("partial line at start", self._pending))
            self._pending = line
            return
        held, self._pending = self._pending, None
        self._adopt_shape(line.count(b",") + 1, None)
        for candidate in (held, line):
            self._classify(candidate, candidate, res)

    def _continues(self, first: bytes, second: bytes) -> bool:
        """Whether the first line of a connection looks whole, judged by the line after it.

        The port may have opened in the middle of a line, whose tail then looks like a line of its own.
        With a sequence counter the next counter must follow; without one, the first fields must have
        the same number of decimals (a cut in the integer part cannot be seen: use a counter for that).
        """
        if self.seq:
            return _leading_int(second) == _leading_int(first) + 1
        a, b = first.split(b",", 1)[0].strip(), second.split(b",", 1)[0].strip()
        return len(a.partition(b".")[2]) == len(b.partition(b".")[2]) and (b"." in a) == (b"." in b)

    def _accept_one(self, line: bytes, res: ParseResult) -> None:
        if self.seq:
            value = _leading_int(line)
            if self.last_seq is not None and value != self.last_seq + 1:
                res.gaps += 1
                if value > self.last_seq:
                    res.missing += value - self.last_seq - 1
            self.last_seq = value
        res.block += line + b"\n"
        res.count += 1

    def _adopt_shape(self, nfields: int, names: list[str] | None) -> None:
        if names is None:
            names = [SEQ_COLUMN] + [f"ch{i}" for i in range(1, nfields)] if self.seq else [
                f"ch{i}" for i in range(1, nfields + 1)
            ]
        elif names and names[0] == SEQ_COLUMN:
            self.seq = True
        self.columns = names
        def pattern(counter: bytes, number: bytes) -> bytes:
            return b",".join(counter if self.seq and i == 0 else number for i in range(nfields))

        self._line_re = re.compile(pattern(_COUNTER, _NUMBER))
        self._block_re = re.compile(b"(?:" + pattern(_FAST_COUNTER, _FAST_NUMBER) + b"\n)+")

    @staticmethod
    def _is_header(line: bytes) -> bool:
        fields = line.split(b",")
        return bool(line) and all(_NAME_RE.fullmatch(f) for f in fields)

    @staticmethod
    def _names(line: bytes) -> list[str]:
        return [f.strip().decode("ascii") for f in line.split(b",")]

    def _reason(self, raw: bytes, line: bytes) -> str:
        if not raw:
            return "empty line"
        if b"\x00" in raw:
            return "nul byte"
        if raw.translate(None, _ALLOWED_TEXT):
            return "not ascii text"
        if self.columns is not None and line.count(b",") + 1 != len(self.columns):
            return "field count"
        return "not a number"
