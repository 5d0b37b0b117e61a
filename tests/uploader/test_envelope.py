"""The uploader's envelopes: one per processed batch, combined into the session's when it is published."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from analysis.synthetic import synth_frame, write_session
from kernel.batch import read_batch_table
from kernel.envelope import batch_envelope, read_envelope
from kernel.layout import batch_stem, committed_batches, envelope_path
from kernel.upload_state import envelope_file, staging_dir
from uploader.convert import process_batch
from uploader.envelope import session_envelope


def test_the_session_envelope_covers_processed_and_unprocessed_batches(tmp_path: Path) -> None:
    """Batches processed before envelopes existed are read at publication; an invalid batch is left out."""
    session = write_session(tmp_path, "dev1", synth_frame("2026-11-25T09:00:00Z", 100, 9, 2), batch_lines=300)
    batches = committed_batches(session)
    bad = session / "batch-000004.csv"
    bad.write_bytes(b"host_time,seq,ch1,ch2\nnot a time,1,2,3\n")
    for b in [*batches[:2], bad]:
        process_batch(str(b), "parquet", str(staging_dir(session)))
    assert envelope_file(staging_dir(session), batch_stem(batches[0])).is_file()
    assert not envelope_file(staging_dir(session), batch_stem(bad)).exists()

    data = session_envelope(session)
    whole = batch_envelope(pa.concat_tables([read_batch_table(b) for b in batches]))
    assert read_envelope(data).equals(whole) and whole.num_rows == 9
    assert envelope_path(session).read_bytes() == data
