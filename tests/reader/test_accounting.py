"""Issue #11: every line the reader read is committed, in rejects.txt, or counted as lost by cause.

Real parts: the reader process, simulated monitors on ptys, a real tmpfs that fills up (ENOSPC).
The new settings are given through the environment (as the unit's EnvironmentFile does).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernel.layout import MANIFEST_NAME, REJECTS_NAME, committed_batches, partial_batches
from kernel.manifest import SessionManifest
from tests.reader.conftest import device_lines, reader_status, recorded_rows, sessions, wait_for
from tests.reader.test_disk_and_systemd import fill

# A 1 MB memory buffer and a 1 MB reserve on a 3 MB disk; a stop retries the disk for 2 s.
ENV = {"SENSOR_MAX_BUFFER_MB": "1", "SENSOR_RESERVE_MB": "1", "SENSOR_STOP_TIMEOUT": "2"}


def manifest_json(session: Path) -> dict:
    """session.json as written (raw JSON: the fields a consumer sees)."""
    return json.loads((session / MANIFEST_NAME).read_bytes())


def seqs(session: Path) -> list[int]:
    """The counters of a session's committed rows."""
    return [int(r[2]) for r in recorded_rows(session)]


@pytest.fixture
def small_disk(tmpfs_factory) -> Path:
    """A 3 MiB tmpfs: a real filesystem that really fills up."""
    return tmpfs_factory("3m")


def _full_disk_session(sim_factory, start_reader, small_disk: Path, held: int):
    """A reader recording onto a disk that is then filled; returns once ``held`` lines wait in memory."""
    sim = sim_factory(channels=4, rate=1000, seq=True)
    data = small_disk / "data"
    rp = start_reader("--port", sim.link, "--data-dir", data, "--local", "--seq", "--batch-lines", "500", env=ENV)
    session = wait_for(lambda: sessions(data, sim.link.name), 10, "session")[0]
    wait_for(lambda: committed_batches(session), 10, "a first batch")
    assert fill(small_disk / "filler") > 0
    rp.wait_log(r"CRITICAL .*data disk error")
    assert sim.wait_sent(sim.sent_count + held, 30)
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 20, "all lines read")
    assert reader_status(data, sim.link.name)["disk_error"]
    return sim, data, rp, session


def test_stop_while_the_disk_is_full_saves_what_memory_holds(sim_factory, start_reader, small_disk):
    """Issue #11.1: SIGTERM after the disk has been full a while: nothing lost, the session closed."""
    sim, _, rp, session = _full_disk_session(sim_factory, start_reader, small_disk, held=3000)
    assert rp.terminate() == 0
    assert "released the 1.0 MB reserve" in rp.log
    m = manifest_json(session)
    assert (m["state"], m["end_reason"], m["lost"]) == ("closed", "stopped", {})
    assert device_lines(recorded_rows(session)) == sim.sent  # every line, once, in order
    assert m["lines"] == sim.sent_count and not partial_batches(session)


def test_unplug_while_the_disk_is_full_closes_the_session(sim_factory, start_reader, small_disk):
    """Issue #11.1: unplug while full: the session is finalised, and the status forgets the old disk error."""
    sim, data, rp, session = _full_disk_session(sim_factory, start_reader, small_disk, held=2000)
    sim.resume()
    assert sim.unplug(drain=5.0) == 0
    rp.wait_log(r"session .* ended \(unplugged\)")
    wait_for(lambda: SessionManifest.load(session).closed, 20, "the session finalised")
    m = manifest_json(session)
    assert (m["end_reason"], m["lost"], m["lines"]) == ("unplugged", {}, sim.sent_count)
    assert device_lines(recorded_rows(session)) == sim.sent
    status = wait_for(lambda: (st := reader_status(data, sim.link.name)) and not st["connected"] and st, 10,
                      "status: waiting")
    assert status["disk_error"] is None  # no session is being written: nothing stale to show
    assert rp.terminate() == 0


def test_buffer_overflow_is_counted_in_session_json(sim_factory, start_reader, small_disk):
    """Issue #11.1: lines dropped because memory was full are in session.json's lost, by cause."""
    sim = sim_factory(channels=4, rate=6000, seq=True)
    data = small_disk / "data"
    rp = start_reader("--port", sim.link, "--data-dir", data, "--local", "--seq", "--batch-lines", "2000",
                      env={**ENV, "SENSOR_RESERVE_MB": "0"})
    session = wait_for(lambda: sessions(data, sim.link.name), 10, "session")[0]
    wait_for(lambda: committed_batches(session), 10, "a first batch")
    filler = small_disk / "filler"
    fill(filler)
    rp.wait_log(r"memory buffer .* is full", timeout=60)
    filler.unlink()
    rp.wait_log(r"data disk writable again")
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 20, "all lines read")
    status = reader_status(data, sim.link.name)
    assert rp.terminate() == 0
    m = manifest_json(session)
    dropped = m["lost"]["buffer_overflow"]
    assert dropped > 0 and set(m["lost"]) == {"buffer_overflow"}
    assert m["lines"] + dropped == sim.sent_count  # every line read: committed or counted
    assert status["lost"]["buffer_overflow"] == dropped and status["lost_lines"] == dropped
    got = seqs(session)
    assert len(got) == len(set(got)) == m["lines"] and set(got) <= set(range(sim.sent_count))


def test_a_gap_across_a_kill_is_recorded_in_the_next_session(sim_factory, start_reader, tmp_path):
    """Issue #11.1: lines lost at a kill -9 fall between two sessions; the new one counts them."""
    sim = sim_factory(channels=3, rate=3000, seq=True, pieces=(5, 40))
    data = tmp_path / "data"
    args = ["--port", sim.link, "--data-dir", data, "--local", "--seq", "--batch-lines", "700"]
    first = start_reader(*args)
    s1 = wait_for(lambda: sessions(data, sim.link.name), 10, "session")[0]
    wait_for(lambda: len(committed_batches(s1)) >= 2, 20, "two batches")
    first.kill()
    second = start_reader(*args)
    assert "recovered session" in second.log
    s2 = wait_for(lambda: [s for s in sessions(data, sim.link.name) if s != s1], 10, "second session")[0]
    wait_for(lambda: reader_status(data, sim.link.name).get("session") == s2.name, 10, "second session status")
    sim.pause()
    assert sim.wait_drained(10)
    assert second.terminate() == 0
    before, after = seqs(s1), seqs(s2)
    gap = after[0] - before[-1] - 1
    assert manifest_json(s2)["lost"] == ({"kill": gap} if gap else {})
    assert manifest_json(s1)["end_reason"] == "recovered"
    assert before + list(range(before[-1] + 1, after[0])) + after == list(range(sim.sent_count))
    assert [r.split(b"\t")[1] for r in _rejects(s2)] in ([], [b"partial line at start"])


def _rejects(session: Path) -> list[bytes]:
    path = session / REJECTS_NAME
    return path.read_bytes().splitlines() if path.exists() else []


def test_cr_only_monitor_is_recorded(sim_factory, start_reader, tmp_path):
    """Issue #11.2: a monitor ending lines with CR only: every line recorded, nothing rejected."""
    sim = sim_factory(channels=4, rate=0, seq=True, count=10_000, cr=True)
    data = tmp_path / "data"
    rp = start_reader("--port", sim.link, "--data-dir", data, "--local", "--seq", "--batch-lines", "3000")
    assert sim.wait_done(30)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == 10_000, 30, "all lines")
    assert rp.terminate() == 0
    [session] = sessions(data, sim.link.name)
    assert device_lines(recorded_rows(session)) == sim.sent
    m = manifest_json(session)
    assert (m["lines"], m["rejects"]) == (10_000, 0)


def test_torn_first_line_without_counter_is_not_committed(sim_factory, start_reader, tmp_path):
    """Issue #11.3: the port opens in mid-line; the tail ("94,..." of "1294,...") is a reject, not a row."""
    sim = sim_factory(channels=2, rate=0, count=0)  # a pty we write exact bytes to
    sim.inject_line(b"94,-0.6114,0.2500\n1295,-0.6000,0.2400\n1296,-0.5000,0.2300\n")
    data = tmp_path / "data"
    rp = start_reader("--port", sim.link, "--data-dir", data, "--local")
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == 2, 10, "the whole lines")
    assert rp.terminate() == 0
    [session] = sessions(data, sim.link.name)
    assert device_lines(recorded_rows(session)) == ["1295,-0.6000,0.2400", "1296,-0.5000,0.2300"]
    assert [r.split(b"\t", 1)[1] for r in _rejects(session)] == [b"partial line at start\t94,-0.6114,0.2500"]


def test_disk_full_before_the_session_starts_then_stop(sim_factory, start_reader, small_disk):
    """No room even for session.json: lines wait in memory; the stop makes room with the reserve."""
    sim = sim_factory(channels=4, rate=1000, seq=True)
    data = small_disk / "data"
    args = ["--port", sim.link, "--data-dir", data, "--local", "--seq"]
    first = start_reader(*args, env=ENV)  # allocates the reserve, which stays for the next run
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 10, "all lines read")
    assert first.terminate() == 0
    sim.resume()
    [done] = sessions(data, sim.link.name)
    fill(small_disk / "filler")
    sent_before = sim.sent_count
    rp = start_reader(*args, env=ENV, wait=False)
    rp.wait_log(r"CRITICAL .*cannot create the session folder")
    assert sim.wait_sent(sent_before + 1500, 10)
    sim.pause()
    assert sim.wait_drained(10)
    assert rp.terminate() == 0
    assert "released the 1.0 MB reserve" in rp.log
    [session] = [s for s in sessions(data, sim.link.name) if s != done]  # and no empty folders left behind
    m = manifest_json(session)
    assert (m["state"], m["end_reason"], m["lost"]) == ("closed", "stopped", {})
    assert seqs(done) + seqs(session) == list(range(sim.sent_count))
