"""The simulator on a real pty: exact lines, formats, pacing, flow control, count and duration."""

from __future__ import annotations

import os
import stat
import termios
import time
from collections.abc import Callable

import pytest

from simulator import Simulator, SimulatorConfigError, nmea_checksum
from tests.fixtures.sim import LinkReader

SimFactory = Callable[..., Simulator]
ReaderFactory = Callable[..., LinkReader]


def test_link_points_at_a_raw_pty(sim_factory: SimFactory) -> None:
    sim = sim_factory(rate=10)
    target = os.readlink(sim.link)
    assert target == sim.port and target.startswith("/dev/pts/")
    assert stat.S_ISCHR(os.stat(sim.link).st_mode)
    fd = os.open(sim.link, os.O_RDWR | os.O_NOCTTY)
    try:
        lflag = termios.tcgetattr(fd)[3]
        iflag = termios.tcgetattr(fd)[0]
        assert not lflag & (termios.ECHO | termios.ICANON)
        assert not iflag & (termios.ICRNL | termios.INLCR)
    finally:
        os.close(fd)


def test_lines_received_exactly_as_recorded(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=3, rate=0, count=3000, seq=True, seq_start=100)
    reader = link_reader(sim.link)
    lines = reader.read_lines(3000, timeout=20)
    assert sim.wait_done(5)
    assert [line.decode() for line in lines] == sim.sent
    assert sim.sent_count == 3000
    assert lines[0].startswith(b"100,") and lines[-1].startswith(b"3099,")
    assert all(len(line.split(b",")) == 4 for line in lines)
    assert reader.read_for(0.2).count(b"\n") == 3000  # nothing after the count


def test_header_checksum_crlf_and_delimiter(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=2, rate=0, count=50, seq=True, header=True, checksum=True, crlf=True,
                      delimiter=";", decimals=3)
    lines = link_reader(sim.link).read_lines(51, eol=b"\r\n")
    assert lines[0] == b"seq;ch1;ch2*%02X" % nmea_checksum(b"seq;ch1;ch2")
    for line, text in zip(lines[1:], sim.sent, strict=True):
        payload, star, hh = line.rpartition(b"*")
        assert star and payload.decode() == text
        assert int(hh, 16) == nmea_checksum(payload) and hh == hh.upper()
        assert b"\n" not in line and b"\r" not in line
        seq, a, b = text.split(";")
        assert seq.isdigit() and len(a.split(".")[1]) == 3 and len(b.split(".")[1]) == 3
    assert sim.columns == ["seq", "ch1", "ch2"]


def test_rate_is_never_exceeded(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    t0 = time.monotonic()
    sim = sim_factory(channels=2, rate=2000)
    reader = link_reader(sim.link)
    reader.read_for(1.0)
    elapsed = time.monotonic() - t0
    received = bytes(reader.data).count(b"\n")
    # Paced from elapsed time, not per-line sleeps: never ahead of the clock. (No lower bound: on a loaded
    # shared machine the writer thread may get less CPU than it asks for.)
    assert 0 < received <= sim.sent_count <= 2000 * elapsed + 100


def test_slow_reader_loses_nothing(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=4, rate=0, count=20000, seq=True)
    # Nobody reads: the kernel buffer fills and the writer must wait instead of dropping lines.
    assert not sim.wait_sent(20000, 0.3)
    assert not sim.done and sim.unread_bytes() > 0
    reader = link_reader(sim.link)
    lines = reader.read_lines(20000, timeout=30)
    assert [int(line.split(b",")[0]) for line in lines] == list(range(20000))
    assert sim.wait_done(5)


def test_reader_can_close_and_reopen_without_loss(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=1, rate=500, seq=True)
    first = link_reader(sim.link)
    first.read_lines(20)
    first.close()
    assert sim.wait_sent(sim.sent_count + 50, 10)  # lines sent while no one has the port open
    second = link_reader(sim.link)
    second.read_lines(150)
    data = bytes(first.data) + bytes(second.data)
    seqs = [int(line.split(b",")[0]) for line in data.split(b"\n")[:-1]]
    assert seqs == list(range(len(seqs))) and len(seqs) >= 150


def test_duration_and_wait_done(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=1, rate=200, duration=0.3)
    reader = link_reader(sim.link)
    assert not sim.wait_done(0.0)
    assert sim.wait_done(10)
    n = sim.sent_count
    assert 20 <= n <= 200 * 0.3 + 50
    reader.read_until(lambda d: d.count(b"\n") == n, 5)
    assert not sim.wait_sent(n + 1, 0.2)


def test_same_seed_same_lines(tmp_path) -> None:
    runs = []
    for i in range(2):
        with Simulator(tmp_path / f"s{i}", channels=3, rate=0, count=200, waveform="mixed", seed=9) as sim:
            reader = LinkReader(sim.link)
            try:
                reader.read_lines(200)
            finally:
                reader.close()
            runs.append(sim.sent)
    assert runs[0] == runs[1] and len(runs[0]) == 200


def test_record_file_and_keep_sent_off(tmp_path, link_reader: ReaderFactory) -> None:
    record = tmp_path / "sent.txt"
    with Simulator(tmp_path / "s", channels=2, rate=0, count=1000, checksum=True, keep_sent=False,
                   record=record) as sim:
        got = link_reader(sim.link).read_lines(1000)
        assert sim.wait_done(5)
        with pytest.raises(Exception, match="keep_sent"):
            _ = sim.sent
    assert record.read_bytes() == b"".join(line.rpartition(b"*")[0] + b"\n" for line in got)


def test_stop_removes_link_and_validates_settings(tmp_path) -> None:
    sim = Simulator(tmp_path / "s", rate=0).start()
    assert sim.link.is_symlink()
    sim.stop()  # with nobody reading: the blocked writer must still stop promptly
    assert not os.path.lexists(sim.link)
    sim.stop()  # idempotent
    for bad in ({"rate": -1}, {"channels": 0}, {"waveform": "square"}, {"delimiter": "."}, {"count": -2}):
        with pytest.raises(SimulatorConfigError):
            Simulator(tmp_path / "x", **bad)
