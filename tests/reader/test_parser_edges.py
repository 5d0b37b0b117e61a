"""Parser edge cases of issue #11: line endings (LF, CR LF, CR-only, forced) and torn first lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reader.parser import LineParser, ParserConfig
from tests.reader.test_parser import feed_all, split_at

number = st.from_regex(rb"\A-?\d{1,4}\.\d{1,4}\Z", fullmatch=True)
rows_st = st.lists(st.lists(number, min_size=3, max_size=3), min_size=3, max_size=30)
ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def _lines(rows: list[list[bytes]], seq: bool = False) -> list[bytes]:
    return [(b"%d," % (1000 + i) if seq else b"") + b",".join(r) for i, r in enumerate(rows)]


@settings(max_examples=150, deadline=None)
@given(rows=rows_st, ending=st.sampled_from(sorted(ENDINGS)), cuts=st.lists(st.integers(0, 3000), max_size=12))
def test_every_line_ending_is_detected_and_the_split_never_matters(rows, ending, cuts):
    """LF, CR LF and CR-only give the same lines, whatever the bulk reads look like."""
    lines = _lines(rows)
    data = b"".join(line + ENDINGS[ending] for line in lines)
    parser = LineParser(ParserConfig())
    parser.quiet()  # the first line's start was seen
    got, rejects, _ = feed_all(parser, split_at(data, cuts))
    assert got == lines and rejects == []


def test_cr_only_monitor_records_every_line():
    """The issue's case: 10 000 CR-terminated lines, read in 4 KiB pieces: all of them, nothing rejected."""
    lines = [b"%d.%04d,-0.%04d" % (i % 7, i, i) for i in range(10_000)]
    data = b"".join(line + b"\r" for line in lines)
    got, rejects, _ = feed_all(LineParser(ParserConfig()), [data[i : i + 4096] for i in range(0, len(data), 4096)])
    assert got == lines[1:]  # the first line's start was not seen (no counter): kept as a reject
    assert rejects == [("partial line at start", lines[0])]


@pytest.mark.parametrize(
    "eol, data, accepted, rejected",
    [
        ("lf", b"1,2\n3,4\n5,6\r\n7,8\n", [b"1,2", b"3,4", b"7,8"], [("line ending", b"5,6\r")]),
        ("crlf", b"1,2\r\n3,4\r\n5,6\n7,8\r\n", [b"1,2", b"3,4", b"7,8"], [("line ending", b"5,6")]),
        ("cr", b"1,2\r3,4\r5,6\n7,8\r9,1\r", [b"1,2", b"3,4", b"9,1"], [("line ending", b"5,6\n7,8")]),
        ("auto", b"1,2\n3,4\r\n5,6\r7,8\n\r", [b"1,2", b"3,4", b"5,6", b"7,8"], [("empty line", b"")]),
    ],
)
def test_forced_line_endings_count_what_does_not_fit(eol, data, accepted, rejected):
    """A forced ending: any other CR or LF makes its line a reject, kept verbatim (never silently dropped)."""
    parser = LineParser(ParserConfig(eol=eol))
    parser.quiet()
    for cuts in ([], [len(data) // 2], list(range(len(data)))):
        parser = LineParser(ParserConfig(eol=eol))
        parser.quiet()
        got, rejects, _ = feed_all(parser, split_at(data, cuts))
        assert (got, rejects) == (accepted, rejected)


def test_cr_only_incomplete_tail_is_kept_verbatim():
    parser = LineParser(ParserConfig(eol="cr"))
    _, rejects, _ = feed_all(parser, [b"1,2\r3,4\r5,6\r7\n"])
    assert rejects[-1] == ("incomplete at end", b"7\n")


@settings(max_examples=300, deadline=None)
@given(rows=rows_st, counter=st.booleans(), seq=st.booleans(), cut=st.integers(1, 60),
       cuts=st.lists(st.integers(0, 3000), max_size=6))
def test_a_first_line_whose_start_was_not_seen_is_never_accepted(rows, counter, seq, cut, cuts):
    """The port opens mid-line: the tail of that line never becomes a row, with or without a counter.

    ``counter`` puts a counter column in the lines; ``seq`` tells the parser about it (the issue's torn
    row "94,-0.6114,..." came from a counter the reader was not told about).
    """
    if seq and not counter:
        return
    lines = _lines(rows, counter)
    cut = min(cut, len(lines[0]))
    torn = lines[0][cut:]
    data = torn + b"\n" + b"".join(line + b"\n" for line in lines[1:])
    got, rejects, _ = feed_all(LineParser(ParserConfig(seq=seq)), split_at(data, cuts))
    whole = lines[1:]
    assert all(line in whole for line in got), "a torn line was accepted"
    assert len(got) + len(rejects) == len(whole) + 1  # every line accounted for
    if seq:
        assert got == whole  # a counter confirms the second line at once
    else:
        assert got == whole[1:] or got == whole  # without one, the first line is given up unless confirmed


def test_first_line_without_counter_is_kept_as_a_reject_unless_its_start_was_seen():
    data = b"94,-0.6114,0.2500\n1295,-0.6000,0.2400\n1296,-0.5000,0.2300\n"
    lines, rejects, _ = feed_all(LineParser(ParserConfig()), [data])
    assert rejects == [("partial line at start", b"94,-0.6114,0.2500")]
    assert lines == [b"1295,-0.6000,0.2400", b"1296,-0.5000,0.2300"]
    quiet = LineParser(ParserConfig())
    quiet.quiet()  # no byte was waiting when the port opened: the first byte starts a line
    assert feed_all(quiet, [data])[0] == data.splitlines()


def test_a_lone_first_line_with_a_counter_is_not_trusted_at_the_end():
    _, rejects, _ = feed_all(LineParser(ParserConfig(seq=True)), [b"94,0.5,0.25\n"])
    assert rejects == [("partial line at start", b"94,0.5,0.25")]


def test_a_torn_first_line_is_named_as_such_whatever_is_wrong_with_it():
    """The tail of a cut line may be empty or start with a delimiter: still "partial line at start"."""
    for torn in (b"", b",0.5000,0.2500", b".5000,0.2500"):
        _, rejects, _ = feed_all(LineParser(ParserConfig(seq=True)), [torn + b"\n7,0.1000,0.2000\n8,0.1,0.2\n"])
        assert rejects == [("partial line at start", torn)]
