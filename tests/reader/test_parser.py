"""The parser as a pure function of bytes: examples and hypothesis properties."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from reader.parser import LineParser, ParserConfig, nmea_checksum

NUMBER = re.compile(rb"[ ]*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?[ ]*")


def feed_all(parser: LineParser, chunks: list[bytes]) -> tuple[list[bytes], list[tuple[str, bytes]], int]:
    """Feed chunks then finish; return accepted lines, rejects and gap count."""
    lines: list[bytes] = []
    rejects: list[tuple[str, bytes]] = []
    gaps = 0
    for res in [*(parser.feed(c) for c in chunks), parser.finish()]:
        lines.extend(res.block.split(b"\n")[:-1])
        rejects.extend((r.reason, r.data) for r in res.rejects)
        gaps += res.gaps
        assert res.count == len(res.block.split(b"\n")) - 1
    return lines, rejects, gaps


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


def test_columns_from_header_and_verbatim_fields():
    p = LineParser(ParserConfig())
    lines, rejects, _ = feed_all(p, [b"seq,ecg,resp\n0,0.10,-1\n1,1e-3,+2.50\n"])
    assert p.columns == ["seq", "ecg", "resp"] and p.seq
    assert lines == [b"0,0.10,-1", b"1,1e-3,+2.50"] and rejects == []


def test_first_line_cut_when_the_port_opened_is_rejected():
    p = LineParser(ParserConfig(seq=True))
    lines, rejects, gaps = feed_all(p, [b"4,0.5000,0.2500\n1235,0.1000,0.2000\n1236,0.1,0.2\n"])
    assert lines == [b"1235,0.1000,0.2000", b"1236,0.1,0.2"]
    assert rejects == [("partial line at start", b"4,0.5000,0.2500")] and gaps == 0


def test_first_line_without_counter_checked_by_decimals():
    p = LineParser(ParserConfig())
    lines, rejects, _ = feed_all(p, [b"25,0.2500\n0.1000,0.2000\n0.3000,0.4000\n"])
    assert rejects == [("partial line at start", b"25,0.2500")] and len(lines) == 2


def test_overlong_line_is_bounded_and_parsing_resumes():
    p = LineParser(ParserConfig(max_line=64))
    p.quiet()  # the first line's start was seen
    assert p.feed(b"1,2\n3,4\n").block == b"1,2\n3,4\n"
    res = p.feed(b"9" * 10_000)
    assert [r.reason for r in res.rejects] == ["overlong"] and len(res.rejects[0].data) == 64
    assert p.feed(b"9" * 10_000).rejects == []  # still discarding; nothing accumulates
    res = p.feed(b"99\n5,6\n")
    assert res.block == b"5,6\n"


def test_checksum_and_delimiter():
    payload = b"7;1.5;2.5"
    p = LineParser(ParserConfig(delimiter=b";", seq=True, checksum=True))
    good = b"%s*%02X\r\n" % (payload, nmea_checksum(payload))
    lines, rejects, _ = feed_all(p, [good, b"8;1.5;2.5*%02X\r\n" % nmea_checksum(b"8;1.5;2.5"), b"9;1;2*00\n"])
    assert lines == [b"7,1.5,2.5", b"8,1.5,2.5"] and rejects == [("checksum mismatch", b"9;1;2*00")]


def test_stray_comma_with_other_delimiter_is_rejected():
    p = LineParser(ParserConfig(delimiter=b";"))
    p.quiet()
    lines, rejects, _ = feed_all(p, [b"1;2\n3;4\n5,5;6\n7;8\n"])
    assert lines == [b"1,2", b"3,4", b"7,8"] and rejects == [("stray comma", b"5,5;6")]


valid_number = st.from_regex(rb"\A-?\d{1,4}\.\d{1,4}\Z", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=8))
def test_arbitrary_bytes_give_only_valid_lines_and_rejects(data, cuts):
    """Whatever arrives: accepted lines are well-formed complete input lines; the split never matters."""
    one = feed_all(LineParser(ParserConfig(max_line=128)), [data])
    many = feed_all(LineParser(ParserConfig(max_line=128)), split_at(data, cuts))
    assert one == many
    lines, rejects, _ = one
    input_lines = set(re.split(rb"\r\n|\r|\n", data))  # LF, CR LF and CR each end a line
    widths = {line.count(b",") for line in lines}
    assert len(widths) <= 1
    for line in lines:
        assert line in input_lines
        assert all(NUMBER.fullmatch(f) for f in line.split(b","))
    for _, raw in rejects:
        assert len(raw) <= max(128, len(data))


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(valid_number, min_size=3, max_size=3), min_size=2, max_size=40),
    noise=st.lists(st.tuples(st.integers(0, 40), st.binary(min_size=1, max_size=30)), max_size=5),
    cuts=st.lists(st.integers(0, 5000), max_size=10),
)
def test_valid_lines_survive_noise_exactly_once_in_order(rows, noise, cuts):
    """Valid counter lines mixed with noise lines: exactly the valid lines come out, in order."""
    good = [b"%d,%s" % (i, b",".join(r)) for i, r in enumerate(rows)]
    stream = list(good)
    for pos, junk in sorted(noise, reverse=True):
        junk = junk.replace(b"\n", b"").replace(b"\r", b"")
        if pos > 0:  # the first line must stay whole: it is judged by the one after it
            stream.insert(min(pos, len(stream)), b"#" + junk)
    data = b"\n".join(stream) + b"\n"
    lines, rejects, gaps = feed_all(LineParser(ParserConfig(seq=True)), split_at(data, cuts))
    assert lines == good
    assert len(rejects) == len(stream) - len(good)
    assert gaps == 0
