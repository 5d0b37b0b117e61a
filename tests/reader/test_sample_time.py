"""End to end on a real pty: the reader writes the sample-time column and the clock's quality in session.json."""

from __future__ import annotations

from itertools import pairwise

import pyarrow as pa

from kernel.batch import SAMPLE_TIME_COLUMN, TIME_COLUMN, read_batch_names, read_batch_table
from kernel.layout import committed_batches
from kernel.manifest import SessionManifest
from simulator.truth import read_truth, true_times
from tests.reader.conftest import device_lines, reader_status, recorded_rows, sessions, wait_for


def test_sample_time_column_and_clock_quality(sim_factory, start_reader, tmp_path):
    truth = tmp_path / "truth.jsonl"
    sim = sim_factory(channels=3, rate=500, seq=True, burst=0.016, truth=truth)
    data = tmp_path / "data"
    rp = start_reader("--port", sim.link, "--data-dir", data, "--local", "--seq", "--sample-rate", "500",
                      "--batch-lines", "400")
    wait_for(lambda: reader_status(data, sim.link.name).get("lines", 0) >= 2000, 30, "4 s of lines")
    live = reader_status(data, sim.link.name)["clock"]  # the status carries the clock's quality so far
    assert live["nominal_rate_hz"] == 500 and live["segments"] >= 1
    sim.pause()
    assert sim.wait_drained(10)
    wait_for(lambda: reader_status(data, sim.link.name).get("lines") == sim.sent_count, 10, "all lines read")
    assert rp.terminate() == 0
    [session] = sessions(data, sim.link.name)
    batches = committed_batches(session)
    assert read_batch_names(batches[0])[:3] == [TIME_COLUMN, SAMPLE_TIME_COLUMN, "seq"]
    assert device_lines(recorded_rows(session)) == sim.sent  # the device's fields are still verbatim
    table = pa.concat_tables([read_batch_table(b) for b in batches])
    assert table.schema.field(SAMPLE_TIME_COLUMN).type == pa.timestamp("us", tz="UTC")
    seqs = table.column("seq").to_pylist()
    sample = [t / 1e6 for t in table.column(SAMPLE_TIME_COLUMN).cast(pa.int64()).to_pylist()]
    host = [t / 1e6 for t in table.column(TIME_COLUMN).cast(pa.int64()).to_pylist()]
    true = true_times(read_truth(truth), seqs)
    back = [(i, seqs[i], seqs[i + 1], a, b) for i, (a, b) in enumerate(pairwise(sample)) if b <= a]
    assert not back, f"sample times not increasing (index, seq, next seq, time, next time): {back[:5]}"
    assert all(s <= h for s, h in zip(sample, host, strict=True))  # never dated after it was received
    settled = sorted(abs(s - t) for s, t, q in zip(sample, true, seqs, strict=True) if q >= seqs[0] + 1000)
    assert settled[len(settled) // 2] < 0.002  # the reads arrive every 16 ms; the clock dates each sample
    m = SessionManifest.load(session)
    q = m.clock_quality
    assert q is not None and q.nominal_rate_hz == 500 and q.rate_hz is not None
    assert abs(q.rate_hz - 500) < 0.5 and q.reads > 100 and q.segments >= 1
    assert set(q.delay_ms) == {"p50", "p99", "max"} and q.ntp_at_start in (True, False, None)
    assert m.ntp_synchronized in (True, False, None)
