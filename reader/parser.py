"""Line framing and validation: a pure function of bytes (feed bytes, get accepted lines and rejects)."""

from __future__ import annotations

import dataclasses
import re
from functools import reduce
from operator import xor

from kernel.batch import SEQ_COLUMN

_NUMBER = rb"[ ]*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?[ ]*"
_COUNTER = rb"[ ]*\d+[ ]*"
# The block fast path uses the plain forms most devices send, with possessive quantifiers (the grammar
# never needs to backtrack): about 2.5x faster to match than the lenient forms above, against which lines
# that fail the fast path are re-checked one by one.
_FAST_NUMBER = rb"-?\d++\.?+\d*+(?:[eE][-+]?\d++)?+"
_FAST_COUNTER = rb"\d++"
_NUMBER_RE = re.compile(_NUMBER)
_COUNTER_RE = re.compile(_COUNTER)
_NAME_RE = re.compile(rb"[ ]*[A-Za-z_][A-Za-z0-9_.()\[\]-]*[ ]*")
_CHECKSUM_RE = re.compile(rb"^(.*)\*([0-9A-Fa-f]{2})$", re.DOTALL)
_ALLOWED_TEXT = bytes(range(0x20, 0x7F))
_SWAP_CR_LF = bytes.maketrans(b"\r\n", b"\n\r")  # forced CR endings: split on "\n" like the other modes

EOL_MODES = ("auto", "lf", "crlf", "cr")


@dataclasses.dataclass(frozen=True)
class ParserConfig:
    """How the device frames its lines."""

    delimiter: bytes = b","
    seq: bool = False  # first column is a sequence counter (also implied by a header naming it "seq")
    checksum: bool = False  # every line ends with NMEA-style "*HH" (XOR of the bytes before "*")
    max_line: int = 4096  # longer lines are rejected; memory stays bounded
    eol: str = "auto"  # auto: LF, CR LF and CR each end a line; lf/crlf/cr: only that one (others: rejected)


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


def _counter_follows(first: bytes, second: bytes) -> bool:
    """Whether both lines start with an integer counter and the second one is the next."""
    a, b = first.split(b",", 1)[0], second.split(b",", 1)[0]
    return bool(_COUNTER_RE.fullmatch(a) and _COUNTER_RE.fullmatch(b)) and int(b) == int(a) + 1


def nmea_checksum(payload: bytes) -> int:
    """XOR of all bytes: the NMEA-style line checksum."""
    return reduce(xor, payload, 0)


class LineParser:
    """Splits a byte stream into lines and sorts them into accepted data and rejects.

    Columns come from a header line (all fields are names) or, failing that, from the first two data lines
    that agree on their shape. The first line of a connection may be the tail of a line cut when the port
    opened: unless its start was seen (``quiet`` before any byte), it is accepted only when a sequence
    counter confirms it (the next counter follows), else rejected as "partial line at start".
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
        self._lines = 0  # lines ended so far (until the shape is known)
        self._start_seen = False  # the line was quiet before the first byte: the first line is whole
        self._pending_suspect = False  # the held first line may be the tail of a cut line
        self._after_cr = False  # auto line endings: the last byte was a CR (a LF right after it belongs to it)

    # -- public -------------------------------------------------------------------------------------
    def quiet(self) -> None:
        """The port was quiet before any byte arrived: the first line starts with the first byte."""
        if self._lines == 0 and not self._tail and not self._discarding:
            self._start_seen = True

    def feed(self, data: bytes) -> ParseResult:
        """Consume bytes; return the complete lines they finished."""
        res = ParseResult()
        max_line = self.config.max_line
        eol = self.config.eol
        if eol == "auto":
            if self._after_cr and data[:1] == b"\n":
                data = data[1:]
            self._after_cr = False
            if b"\r" in data:
                self._after_cr = data[-1:] == b"\r"
                data = data.replace(b"\r\n", b"\n")
                if b"\r" in data:
                    data = data.replace(b"\r", b"\n")
        elif eol == "cr":
            data = data.translate(_SWAP_CR_LF)
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
        if complete:
            self._process(complete, res)
        if len(tail) > max_line:
            self._lines += 1
            res.rejects.append(Reject("overlong", tail[:max_line]))
            self._discarding = True
            tail = b""
        self._tail = tail
        if eol == "cr" and res.rejects:
            res.rejects = [Reject(r.reason, r.data.translate(_SWAP_CR_LF)) for r in res.rejects]
        return res

    def finish(self) -> ParseResult:
        """End of stream: flush a held first line and reject an unterminated tail."""
        res = ParseResult()
        if self._pending is not None:
            line, self._pending = self._pending, None
            if self._pending_suspect:  # nothing came after it to confirm it
                res.rejects.append(Reject("partial line at start", line))
            else:
                self._adopt_shape(line.count(b",") + 1, None)
                self._classify(line, line, res)
        if self._tail:
            data = self._tail.translate(_SWAP_CR_LF) if self.config.eol == "cr" else self._tail
            res.rejects.append(Reject("incomplete at end", data))
            self._tail = b""
        self._discarding = False
        return res

    # -- internals ----------------------------------------------------------------------------------
    def _process(self, complete: bytes, res: ParseResult) -> None:
        eol = self.config.eol
        if eol == "crlf":
            n = complete.count(b"\n")
            if complete.count(b"\r\n") != n or complete.count(b"\r") != n:
                return self._slow(complete, res, normalise=self.config.delimiter != b",", check_eol=True)
            complete = complete.replace(b"\r\n", b"\n")
        elif eol != "auto" and b"\r" in complete:  # a stray CR (in "cr" mode: LF) inside a line
            return self._slow(complete, res, normalise=self.config.delimiter != b",", check_eol=True)
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

    def _slow(self, complete: bytes, res: ParseResult, normalise: bool, check_eol: bool = False) -> None:
        lines = complete.split(b"\n")
        lines.pop()
        delim = self.config.delimiter
        eol = self.config.eol if check_eol else "auto"  # (else the endings are known to be right)
        for raw in lines:
            self._lines += 1
            if eol == "crlf":
                if raw[-1:] != b"\r" or b"\r" in raw[:-1]:
                    res.rejects.append(Reject("line ending", raw))
                    continue
                raw = raw[:-1]
            elif eol != "auto" and b"\r" in raw:  # lf: a stray CR; cr: a LF (swapped)
                res.rejects.append(Reject("line ending", raw))
                continue
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
        suspect = self._lines == 1 and not self._start_seen
        if not line or not all(_NUMBER_RE.fullmatch(f) for f in line.split(b",")):
            res.rejects.append(Reject("partial line at start" if suspect else self._reason(raw, line), raw))
            return
        if self._pending is None:
            if suspect and not self.seq:  # nothing can tell a whole first line from the tail of a cut one
                res.rejects.append(Reject("partial line at start", raw))
                return
            self._pending, self._pending_suspect = line, suspect
            return
        if self._pending.count(b",") != line.count(b","):
            reason = "partial line at start" if self._pending_suspect else "field count"
            res.rejects.append(Reject(reason, self._pending))
            self._pending, self._pending_suspect = line, False
            return
        if self._pending_suspect and not _counter_follows(self._pending, line):
            # The port may have opened in the middle of a line, whose tail then looks like a line of its
            # own: a counter tells (the tail of "1294,..." is "94,..." or "294,...", not followed by 95).
            res.rejects.append(Reject("partial line at start", self._pending))
            self._pending, self._pending_suspect = line, False
            return
        held, self._pending = self._pending, None
        self._adopt_shape(line.count(b",") + 1, None)
        for candidate in (held, line):
            self._classify(candidate, candidate, res)

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
