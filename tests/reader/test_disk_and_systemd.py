"""A full data disk (real tmpfs, ENOSPC) and the systemd notifications, against the real reader process."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kernel.batch import read_batch_rows
from kernel.layout import committed_batches, partial_batches
from tests.reader.conftest import device_lines, reader_status, recorded_rows, sessions, wait_for
from tests.reader.test_stream import Sink


@pytest.fixture
def small_disk(tmpfs_factory) -> Path:
    """A 3 MiB tmpfs: a real filesystem that really fills up."""
    return tmpfs_factory("3m")


def fill(path: Path) -> int:
    """Write zeros until the filesystem refuses (ENOSPC); returns bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                written += f.write(b"\0" * 65536)
        except OSError as err:
            assert err.errno == 28  # ENOSPC
    return written


def test_full_disk_loses_nothing_and_resumes(sim_factory, start_reader, small_disk):
    sink = Sink()
    try:
        sim = sim_factory(channels=4, rate=2000, seq=True)
        data = small_disk / "data"
        env = {"SENSOR_WS_URL": f"ws://127.0.0.1:{sink.port}/", "SENSOR_INGEST_TOKEN": "t"}
        rp = start_reader("--port", sim.link, "--data-dir", data, "--seq", "--batch-lines", "1000", env=env)
        session = wait_for(lambda: sessions(data, sim.link.name), 10, "session")[0]
        wait_for(lambda: committed_batches(session), 10, "a first batch")
        filler = small_disk / "filler"
        assert fill(filler) > 0
        rp.wait_log(r"CRITICAL .*data disk error")
        frames_at_error = len(sink.samples())
        sent_at_error = sim.sent_count
        assert sim.wait_sent(sent_at_error + 3000, 10)  # recording goes on into memory meanwhile
        sink.wait(lambda ms: len([m for m in ms if m["type"] == "samples"]) > frames_at_error + 10)
        sink.wait(lambda ms: any(m["type"] == "status" and m["disk_error"] for m in ms))
        assert rp.proc.poll() is None
        filler.unlink()
        rp.wait_log(r"data disk writable again")
        sim.pause()
        assert sim.wait_drained(10)
        wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 20, "all lines")
        assert rp.terminate() == 0
    finally:
        sink.close()
    for batch in committed_batches(session):
        read_batch_rows(batch)  # every committed batch parses
    assert not partial_batches(session)
    assert device_lines(recorded_rows(session)) == sim.sent  # nothing lost, nothing doubled
    assert rp.log.count("data disk error") == 1


def test_systemd_notifications(sim_factory, start_reader, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    try:
        sim = sim_factory(channels=2, rate=500, seq=True)
        rp = start_reader("--port", sim.link, "--data-dir", tmp_path / "d", "--local", "--seq",
                          env={"NOTIFY_SOCKET": path})
        got: list[str] = []
        while not ({"READY=1", "WATCHDOG=1"} <= set(got) and any(g.startswith("STATUS=recording") for g in got)):
            got.append(sock.recv(4096).decode())
        assert got.index("READY=1") < got.index("WATCHDOG=1")
        status = next(g for g in got if g.startswith("STATUS=recording"))
        assert "lines/s" in status and "rejects" in status
        assert rp.terminate() == 0
        while "STOPPING=1" not in got:
            got.append(sock.recv(4096).decode())
    finally:
        sock.close()
