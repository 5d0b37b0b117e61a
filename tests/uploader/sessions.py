"""Test helper: build recorded sessions on disk through the kernel (committed batches + session.json)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kernel.atomic import write_atomic
from kernel.batch import batch_header, format_time
from kernel.layout import batch_filename
from kernel.manifest import SessionManifest

T0 = datetime(2026, 11, 20, 8, 0, 0, tzinfo=UTC)


def batch_bytes(columns: list[str], start: datetime, rows: int, rate: float, seq0: int, seed: int) -> bytes:
    """A batch file's bytes: header + rows of host time, seq and channel values."""
    rnd = random.Random(seed)
    step = timedelta(seconds=1 / rate)
    lines = [batch_header(columns).decode()]
    for i in range(rows):
        fields = [format_time(start + i * step)]
        for col in columns:
            fields.append(str(seq0 + i) if col == "seq" else f"{rnd.uniform(-5, 5):.4f}")
        lines.append(",".join(fields) + "\n")
    return "".join(lines).encode("ascii")


def make_session(
    data_dir: Path,
    device: str = "dev1",
    start: datetime = T0,
    batches: int = 3,
    rows: int = 200,
    channels: int = 4,
    rate: float = 1000.0,
    closed: bool = True,
    seq: bool = True,
) -> Path:
    """A session folder with ``batches`` committed batches; closed (finalised) or still open."""
    session_id = start.strftime("%Y%m%dT%H%M%SZ")
    sdir = data_dir / device / session_id
    sdir.mkdir(parents=True)
    columns = (["seq"] if seq else []) + [f"ch{i + 1}" for i in range(channels)]
    manifest = SessionManifest(
        device_id=device,
        session_id=session_id,
        port=f"/dev/{device}",
        baudrate=115200,
        columns=columns,
        started_at=format_time(start),
        software_version="test",
    )
    manifest.save(sdir)
    for n in range(batches):
        add_batch(sdir, manifest, n + 1, start + timedelta(seconds=n * rows / rate), rows, rate)
    if closed:
        close_session(sdir)
    return sdir


def add_batch(
    sdir: Path, manifest: SessionManifest, index: int, start: datetime, rows: int, rate: float
) -> Path:
    """Commit batch number ``index`` (atomically, like the reader) and count it in the manifest."""
    path = sdir / batch_filename(index)
    seed = hash((sdir.name, index)) & 0xFFFF
    write_atomic(path, batch_bytes(manifest.columns, start, rows, rate, (index - 1) * rows, seed))
    manifest.batches = index
    manifest.lines += rows
    manifest.save(sdir)
    return path


def close_session(sdir: Path) -> None:
    """Finalise the manifest as the reader does on stop."""
    manifest = SessionManifest.load(sdir)
    manifest.state, manifest.end_reason = "closed", "stopped"
    manifest.ended_at = format_time(datetime.now(UTC))
    manifest.save(sdir)
