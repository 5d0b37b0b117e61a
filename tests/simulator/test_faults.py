"""Fault injection and hot-plug on a real pty: each fault appears as its exact bytes between whole lines."""

from __future__ import annotations

import concurrent.futures
import os
import select
import threading
from collections.abc import Callable

import pytest

from simulator import Simulator, SimulatorError, SimulatorStopped, SimulatorTimeout, nmea_checksum
from tests.fixtures.sim import LinkReader

SimFactory = Callable[..., Simulator]
ReaderFactory = Callable[..., LinkReader]


def _seq(line: bytes) -> int:
    return int(line.split(b",")[0])


def test_every_fault_sits_between_whole_lines(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=3, rate=1000, seq=True, checksum=True)
    reader = link_reader(sim.link)
    events = []
    for inject in (lambda: sim.inject_garbage(40), sim.inject_truncated, sim.inject_nul,
                   lambda: sim.inject_overlong(5000, hold=0.05), lambda: sim.inject_line(b"hello\n")):
        assert sim.wait_sent(sim.sent_count + 5, 5)
        events.append(inject())
    assert sim.wait_sent(sim.sent_count + 5, 5)
    data = reader.read_until(lambda d: d.count(b"\n") >= sim.sent_count + len(events), 10)
    lines = data.split(b"\n")[:-1]
    fault_lines = {e.data.rstrip(b"\n"): e for e in events}
    valid = []
    for line in lines:
        if line in fault_lines:
            event = fault_lines.pop(line)
            # the fault came after exactly event.after valid lines
            assert len(valid) == event.after, event.kind
        else:
            payload, _, hh = line.rpartition(b"*")
            assert int(hh, 16) == nmea_checksum(payload), line
            valid.append(payload.decode())
    assert not fault_lines, f"faults never seen: {list(fault_lines)}"
    assert valid == sim.sent[: len(valid)]
    assert [_seq(v.encode()) for v in valid] == list(range(len(valid)))  # faults are never recorded as sent
    kinds = [e.kind for e in sim.faults]
    assert kinds == ["garbage", "truncated", "nul", "overlong", "line"]


def test_fault_shapes(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=4, rate=500, seq=True, crlf=True)
    link_reader(sim.link)
    g = sim.inject_garbage(64)
    assert len(g.data) == 66 and g.data.endswith(b"\r\n") and any(b >= 0x80 for b in g.data)
    t = sim.inject_truncated()
    next_line = sim.sent[t.after] if sim.wait_sent(t.after + 1, 5) else ""
    assert next_line.encode().startswith(t.data[:-2]) and len(t.data) - 2 <= len(next_line) // 2
    n = sim.inject_nul()
    assert b"\0\0\0" in n.data and n.data.endswith(b"\r\n")
    o = sim.inject_overlong(9000, hold=0.01)
    assert len(o.data) == 9002 and b"\n" not in o.data[:-1]


def test_overlong_line_stays_open_during_hold(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=2, rate=200, seq=True)
    reader = link_reader(sim.link)
    assert sim.wait_sent(5, 5)
    t = threading.Thread(target=lambda: sim.inject_overlong(3000, hold=0.5))
    t.start()
    try:
        data = reader.read_until(lambda d: len(d.rsplit(b"\n", 1)[-1]) >= 3000, 5)
        tail_at = len(data)
        reader.read_for(0.2)  # well inside the hold: nothing more may arrive
        assert len(reader.data) == tail_at
    finally:
        t.join(5)
    event = sim.faults[-1]
    reader.read_until(lambda d: d.count(b"\n") >= event.after + 3, 5)
    assert event.kind == "overlong" and event.data in bytes(reader.data)


def test_pause_and_resume(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=1, rate=1000)
    link_reader(sim.link)
    assert sim.wait_sent(10, 5)
    sim.pause()
    n = sim.sent_count
    assert not sim.wait_sent(n + 1, 0.3)
    sim.resume()
    assert sim.wait_sent(n + 20, 5)
    sim.pause(0.2)  # resumes by itself
    assert sim.wait_sent(sim.sent_count + 20, 5)


def test_unplug_and_replug(sim_factory: SimFactory, link_reader: ReaderFactory) -> None:
    sim = sim_factory(channels=2, rate=1000, seq=True, header=True)
    reader = link_reader(sim.link)
    first_port = sim.port
    lines = reader.read_lines(30)
    assert lines[0] == b"seq,ch1,ch2"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # keep reading while unplug drains the pty
        unplugging = pool.submit(sim.unplug, drain=5)
        while not unplugging.done():
            reader.poll(0.05)
        lost = unplugging.result()
    assert lost == 0
    assert not os.path.lexists(sim.link) and sim.port is None and not sim.plugged
    # the reader's open descriptor hangs up: EOF or EIO, and poll reports it
    assert reader.fd is not None
    poller = select.poll()
    poller.register(reader.fd, select.POLLIN)
    assert any(ev & (select.POLLHUP | select.POLLERR) for _, ev in poller.poll(2000))
    reader.read_for(0.5)
    assert reader.hangup
    before = [line for line in bytes(reader.data).split(b"\n")[1:-1]]
    assert [_seq(line) for line in before] == list(range(len(before)))
    assert len(before) == sim.sent_count  # drained: the reader got every line before the pty vanished
    with pytest.raises(SimulatorError, match="unplugged"):
        sim.inject_garbage()
    n = sim.sent_count
    assert not sim.wait_sent(n + 1, 0.2)  # no device, no lines

    new_port = sim.replug()
    assert os.readlink(sim.link) == new_port == sim.port
    second = link_reader(sim.link)
    after = second.read_lines(20)
    assert after[0] == b"seq,ch1,ch2"  # header again after a replug
    assert [_seq(line) for line in after[1:20]] == list(range(n, n + 19))  # the counter continues
    assert first_port is not None
    with pytest.raises(SimulatorError, match="already plugged"):
        sim.replug()


def test_unplug_without_drain_reports_lost_bytes(sim_factory: SimFactory) -> None:
    sim = sim_factory(channels=4, rate=0, seq=True)
    assert sim.wait_sent(100, 5)
    assert sim.wait_drained(0.5) is False  # nobody reads: bytes are waiting in the kernel
    lost = sim.unplug()  # ... and go with the pty
    assert lost > 0
    count = sim.sent_count
    sent = sim.sent
    assert len(sent) == count and _seq(sent[-1].encode()) == count - 1  # a line cut off is not "sent"
    sim.replug()
    reader = LinkReader(sim.link)
    try:
        first = reader.read_lines(1)[0]
    finally:
        reader.close()
    assert _seq(first) == count  # no line both cut off and counted as sent


def test_commands_time_out_when_nobody_reads(sim_factory: SimFactory) -> None:
    sim = sim_factory(channels=8, rate=0)
    assert sim.wait_sent(100, 5)
    with pytest.raises(SimulatorTimeout):
        sim.inject_garbage(timeout=0.3)
    assert sim.faults == []  # the timed-out command was withdrawn


def test_commands_after_stop_are_refused(tmp_path) -> None:
    sim = Simulator(tmp_path / "s", rate=10).start()
    sim.stop()
    with pytest.raises(SimulatorStopped):
        sim.pause()
