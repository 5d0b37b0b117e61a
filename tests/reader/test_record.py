"""End to end on real ptys: simulator → sensor-reader → committed batches, every line exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.batch import read_batch_header
from kernel.layout import REJECTS_NAME, batch_index, committed_batches, partial_batches
from kernel.manifest import SessionManifest
from tests.reader.conftest import device_lines, reader_status, recorded_rows, sessions, wait_for


def _args(link: Path, data: Path, *extra: str) -> list[str | Path]:
    return ["--port", link, "--data-dir", data, "--local", "--log-level", "DEBUG", *extra]


def test_every_line_exactly_once_across_batches(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=4, rate=0, seq=True, count=20_000, waveform="mixed")
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq", "--batch-lines", "997"))
    assert sim.wait_done(60)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == 20_000, 60, "all lines read")
    assert rp.terminate() == 0
    [session] = sessions(data, sim.link.name)
    batches = committed_batches(session)
    assert [batch_index(b.name) for b in batches] == list(range(1, 22))  # ceil(20000 / 997)
    rows = recorded_rows(session)
    assert device_lines(rows) == sim.sent
    sizes = [len(recorded_rows_of(b)) for b in batches]
    assert sizes[:-1] == [997] * 20 and sizes[-1] == 20_000 - 997 * 20
    m = SessionManifest.load(session)
    assert (m.state, m.end_reason, m.lines, m.batches, m.rejects, m.gaps) == ("closed", "stopped", 20_000, 21, 0, 0)
    assert m.columns == ["seq", "ch1", "ch2", "ch3", "ch4"]
    assert read_batch_header(batches[0]) == m.columns
    assert not partial_batches(session)
    assert all(r[0].endswith("Z") and r[0][10] == "T" for r in rows[:: 1000])


def recorded_rows_of(batch: Path) -> list[list[str]]:
    from kernel.batch import read_batch_rows

    return read_batch_rows(batch)[1]


def test_batch_seconds_commits_while_recording(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=2, rate=200, seq=True)
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq", "--batch-lines", "100000", "--batch-seconds", "0.3"))
    session = wait_for(lambda: sessions(data, sim.link.name), 10, "a session")[0]
    wait_for(lambda: len(committed_batches(session)) >= 3, 20, "three time-based batches")
    sizes = [len(recorded_rows_of(b)) for b in committed_batches(session)]
    assert all(0 < n < 100_000 for n in sizes)
    assert SessionManifest.load(session).state == "open"
    assert rp.terminate() == 0


def test_bad_input_is_rejected_kept_and_counted(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=3, rate=500, seq=True)
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq"))
    assert sim.wait_sent(200, 10)
    sim.inject_garbage(64)
    sim.inject_truncated()
    sim.inject_overlong(20_000)
    sim.inject_nul()
    sim.inject_line(b"\n")
    sim.inject_line(b"1,2\n")
    sim.pause(0.3)
    sim.resume()
    sim.inject_line(b"seq,ch1,ch2,ch3\n")  # the same header again: framing, not a reject
    n = sim.sent_count + 200
    assert sim.wait_sent(n, 10)
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 10, "all lines")
    assert rp.terminate() == 0
    [session] = sessions(data, sim.link.name)
    assert device_lines(recorded_rows(session)) == sim.sent
    records = (session / REJECTS_NAME).read_bytes().split(b"\n")[:-1]
    reasons = [r.split(b"\t")[1].decode() for r in records]
    assert "nul byte" in reasons and "overlong" in reasons and "empty line" in reasons
    assert reasons.count("field count") >= 2  # the truncated line and "1,2"
    assert any(r in reasons for r in ("not ascii text", "not a number", "field count"))
    overlong = next(r for r in records if r.split(b"\t")[1] == b"overlong")
    assert len(overlong.split(b"\t", 2)[2]) == 4096  # kept verbatim up to the limit; memory stays bounded
    m = SessionManifest.load(session)
    assert m.rejects == len(records) >= 6
    assert m.gaps == 0
    assert "rejected a line (nul byte)" in rp.log


@pytest.mark.parametrize(
    "sim_opts, reader_opts, transform",
    [
        ({"crlf": True}, [], None),
        ({"checksum": True}, ["--checksum"], None),
        ({"delimiter": ";"}, ["--delimiter", ";"], lambda s: s.replace(";", ",")),
        ({"header": True}, [], None),
        ({"delimiter": "\t", "header": True}, ["--delimiter", "\t"], lambda s: s.replace("\t", ",")),
    ],
    ids=["crlf", "checksum", "semicolon", "header", "tab-header"],
)
def test_line_formats(sim_factory, start_reader, tmp_path, sim_opts, reader_opts, transform):
    sim = sim_factory(channels=3, rate=0, seq=True, count=3000, **sim_opts)
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq", "--batch-lines", "500", *reader_opts))
    assert sim.wait_done(30)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == 3000, 30, "all lines")
    assert rp.terminate() == 0
    [session] = sessions(data, sim.link.name)
    expected = [transform(s) if transform else s for s in sim.sent]
    assert device_lines(recorded_rows(session)) == expected
    m = SessionManifest.load(session)
    assert m.rejects == 0 and m.columns == ["seq", "ch1", "ch2", "ch3"]


def test_checksum_mismatch_is_rejected(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=2, rate=300, seq=True, checksum=True)
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq", "--checksum"))
    assert sim.wait_sent(50, 10)
    sim.inject_line(b"999999,1.0,2.0*00\n")
    sim.inject_line(b"999999,1.0,2.0\n")
    assert sim.wait_sent(sim.sent_count + 50, 10)
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 10, "all lines")
    assert rp.terminate() == 0
    [session] = sessions(data, sim.link.name)
    reasons = [r.split(b"\t")[1] for r in (session / REJECTS_NAME).read_bytes().splitlines()]
    assert reasons == [b"checksum mismatch", b"checksum missing"]
    assert device_lines(recorded_rows(session)) == sim.sent


def test_sequence_gaps_are_counted(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=2, rate=0, seq=True, count=100, seq_start=0)
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq"))
    assert sim.wait_done(10)
    sim.inject_line(b"150,1.0,2.0\n151,1.0,2.0\n")  # 100..149 never arrive
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == 102, 10, "all lines")
    assert rp.terminate() == 0
    m = SessionManifest.load(sessions(data, sim.link.name)[0])
    assert (m.gaps, m.missing, m.lines) == (1, 50, 102)


def test_unplug_and_replug_make_two_sessions(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=2, rate=400, seq=True)
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq"))
    assert sim.wait_sent(300, 10)
    assert sim.unplug(drain=5.0) == 0
    rp.wait_log(r"vanished")
    first_count = sim.sent_count
    first = wait_for(lambda: [s for s in sessions(data, sim.link.name) if SessionManifest.load(s).closed], 10,
                     "first session closed")[0]
    sim.replug()
    rp.wait_log(r"recording .* session", count=2)
    assert sim.wait_sent(first_count + 300, 10)
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count - first_count, 10, "lines")
    assert rp.terminate() == 0
    s1, s2 = sessions(data, sim.link.name)
    assert s1 == first
    m1, m2 = SessionManifest.load(s1), SessionManifest.load(s2)
    assert (m1.end_reason, m2.end_reason) == ("unplugged", "stopped")
    assert device_lines(recorded_rows(s1)) == sim.sent[:first_count]
    assert device_lines(recorded_rows(s2)) == sim.sent[first_count:]
    assert m1.lines + m2.lines == sim.sent_count


def test_missing_device_is_waited_for(sim_factory, start_reader, tmp_path):
    link = tmp_path / "later"
    data = tmp_path / "data"
    rp = start_reader(*_args(link, data, "--seq"), wait=False)
    rp.wait_log(r"waiting for the device")
    # A counter confirms the first line: the port opens on lines already waiting, maybe in mid-line.
    sim = sim_factory(link=link, channels=2, rate=0, count=500, seq=True)
    rp.wait_log(r"recording .* session")
    assert sim.wait_done(10)
    wait_for(lambda: reader_status(data, "later").get("lines") == 500, 10, "all lines")
    assert rp.terminate() == 0
    assert len(recorded_rows(sessions(data, "later")[0])) == 500


def test_sigterm_commits_the_partial_batch(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=2, rate=0, seq=True, count=1234)
    data = tmp_path / "data"
    rp = start_reader(*_args(sim.link, data, "--seq"))
    assert sim.wait_done(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == 1234, 10, "all lines")
    [session] = sessions(data, sim.link.name)
    assert committed_batches(session) == [] and partial_batches(session)
    assert rp.terminate() == 0
    assert len(recorded_rows(session)) == 1234 and not partial_batches(session)
    assert SessionManifest.load(session).end_reason == "stopped"


def test_second_reader_cannot_take_the_port(sim_factory, start_reader, tmp_path):
    sim = sim_factory(channels=2, rate=200, seq=True)
    data = tmp_path / "data"
    first = start_reader(*_args(sim.link, data, "--seq"))
    second = start_reader(*_args(sim.link, data, "--seq"), wait=False)
    second.wait_log(r"cannot open .*waiting for the device")
    assert second.proc.poll() is None and "recording" not in second.log
    assert second.terminate() == 0
    assert first.terminate() == 0
    assert len(sessions(data, sim.link.name)) == 1
