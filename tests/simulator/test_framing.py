"""Line framing, waveforms and fault builders: pure functions, no pty."""

from __future__ import annotations

import random

import numpy as np
import pytest

from simulator import LineFormat, nmea_checksum
from simulator.faults import garbage, overlong_body, truncated, with_nul
from simulator.waveforms import Waveforms, ecg_shape


def test_checksum_is_xor_of_payload() -> None:
    assert nmea_checksum(b"") == 0
    assert nmea_checksum(b"A") == 0x41
    assert nmea_checksum(b"GPGLL,5300.97914,N,00259.98174,E,125926,A") == 0x28  # a published NMEA sentence


def test_format_block_seq_checksum_crlf() -> None:
    fmt = LineFormat(channels=2, seq=True, checksum=True, crlf=True)
    wire, record, ends = fmt.format_block(7, np.array([[1.0, -2.5], [0.00004, 3.0]]))
    assert record == b"7,1.0000,-2.5000\n8,0.0000,3.0000\n"
    lines = wire.split(b"\r\n")
    assert lines[-1] == b""
    for line, text in zip(lines[:-1], record.splitlines()):
        payload, _, hh = line.partition(b"*")
        assert payload == text
        assert hh == b"%02X" % nmea_checksum(payload)
    assert ends == [len(lines[0]) + 2, len(wire)]


def test_format_block_plain_and_delimiter() -> None:
    fmt = LineFormat(channels=3, delimiter=";", decimals=2)
    wire, record, ends = fmt.format_block(0, np.array([[1, 2, 3]]))
    assert wire == record == b"1.00;2.00;3.00\n"
    assert ends == [15]
    assert fmt.header_text() == "ch1;ch2;ch3"
    assert LineFormat(channels=2, seq=True).header_text() == "seq,ch1,ch2"


@pytest.mark.parametrize("bad", ["", ",,", ".", "-", "5", "*", "\n", "é"])
def test_bad_delimiters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="delimiter"):
        LineFormat(delimiter=bad)


def test_waveforms_are_deterministic_and_index_addressed() -> None:
    a = Waveforms("mixed", 4, 500.0, seed=3)
    b = Waveforms("mixed", 4, 500.0, seed=3)
    whole = a.block(0, 1000)
    assert np.array_equal(whole, b.block(0, 1000))
    assert np.array_equal(whole[400:700], a.block(400, 300))  # a replayed range gives the same values
    assert not np.array_equal(whole, Waveforms("mixed", 4, 500.0, seed=4).block(0, 1000))


def test_ecg_has_one_r_peak_per_beat() -> None:
    wave = Waveforms("ecg", 1, 250.0, seed=1).block(0, 250 * 10)[:, 0]  # 10 s at ~1.2 beats/s
    threshold = 0.5 * wave.max()
    rising = np.flatnonzero((wave[1:] > threshold) & (wave[:-1] <= threshold))
    assert 10 <= len(rising) <= 14
    assert ecg_shape(np.array([0.26]))[0] > 3 * ecg_shape(np.array([0.52]))[0]  # R towers over T


def test_sine_frequency_and_channel_phases_differ() -> None:
    wave = Waveforms("sine", 2, 1000.0, freq=5.0, seed=0).block(0, 2000)
    crossings = np.flatnonzero(np.diff(np.signbit(wave[:, 0]).astype(int)) != 0)
    assert 18 <= len(crossings) <= 22  # 5 Hz for 2 s: 20 zero crossings
    assert not np.allclose(wave[:, 0], wave[:, 1])


def test_fault_builders() -> None:
    rng = random.Random(1)
    g = garbage(50, rng)
    assert len(g) == 51 and g.endswith(b"\n") and b"\n" not in g[:-1] and b"\r" not in g
    assert g[0] >= 0x80
    line = b"12,0.1234,5.6789*3F\r\n"
    t = truncated(line, b",", b"\r\n")
    assert t.endswith(b"\r\n") and line.startswith(t[:-2]) and t.count(b",") < line.count(b",")
    assert overlong_body(20) == b"1.2345,1.2345,1.2345"
    n = with_nul(b"1,2.0000\n")
    assert b"\0" in n and n.replace(b"\0", b"") == b"1,2.0000\n"
