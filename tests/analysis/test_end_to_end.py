"""On a session recorded by the real sensor-reader from the simulator: sine recovered, gaps found, S3, CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from analysis import s3 as analysis_s3
from analysis import transforms as tf
from analysis.cli import main
from analysis.gaps import gap_report
from analysis.loading import load, plan
from analysis.plots import COLORS
from kernel.layout import MANIFEST_NAME, committed_batches, session_dirs
from kernel.manifest import SessionManifest
from kernel.status import read_statuses
from simulator import Simulator
from tests.analysis.conftest import s3_settings
from tests.analysis.helpers import colour_pixels
from tests.analysis.uploads import upload
from tests.fixtures.s3 import S3Server
from tests.support import wait_for

READER = str(Path(sys.executable).with_name("sensor-reader"))
SINE_HZ = 10.0
RATE = 500
SEQ_JUMPS = (50, 7)  # counter values skipped at the two injected gaps
PAUSE_S = 0.5  # the first gap is also a pause in time


@dataclasses.dataclass
class Recorded:
    """A session recorded through the real reader, and where the gaps were injected."""

    session: Path
    sent: list[str]  # every line the simulator sent, as text
    gap_lines: tuple[int, int]  # index (in ``sent``) of the first line after each gap


def _reader_lines(data: Path, device: str) -> int:
    status = read_statuses(data).get(f"reader-{device}", {})
    return int(status.get("lines", -1))


def _skip_counter(sim: Simulator, jump: int, pause: float) -> int:
    """Pause the simulator between lines, advance its counter by ``jump``, wait ``pause`` s, resume."""
    sim.pause()
    at = sim.sent_count
    sim.seq_start += jump  # the next line's counter skips ``jump`` values; the waveform continues
    if pause:
        threading.Event().wait(pause)  # the gap in time itself, not a synchronisation
    sim.resume()
    return at


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """4 ch x 500 Hz sine at 10 Hz for ~4 s with two counter gaps (the first with a 0.5 s pause)."""
    base = tmp_path_factory.mktemp("e2e")
    link, data = base / "sim0", base / "data"
    sim = Simulator(link, channels=4, rate=RATE, waveform="sine", freq=SINE_HZ, seq=True, seed=5)
    sim.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENSOR_")}
    proc = subprocess.Popen(
        [
            READER,
            "--port",
            str(link),
            "--data-dir",
            str(data),
            "--local",
            "--seq",
            "--batch-lines",
            "500",
            "--log-level",
            "WARNING",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.wait_sent(700, 30), "simulator did not send 700 lines"
        first = _skip_counter(sim, SEQ_JUMPS[0], PAUSE_S)
        assert sim.wait_sent(first + 700, 30)
        second = _skip_counter(sim, SEQ_JUMPS[1], 0)
        assert sim.wait_sent(second + 600, 30)
        sim.pause()
        total = sim.sent_count
        wait_for(lambda: _reader_lines(data, "sim0") == total, 30, f"the reader to record {total} lines")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
        sent = sim.sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
        sim.stop()
    [session] = list(session_dirs(data))
    yield Recorded(session, sent, (first, second))


def test_recording_is_complete_and_typed(recorded: Recorded) -> None:
    frame = load(recorded.session)
    assert len(frame) == len(recorded.sent)
    assert list(frame.columns) == ["seq", "ch1", "ch2", "ch3", "ch4"]
    assert frame["seq"].dtype == "int64" and frame["ch2"].dtype == "float64"
    assert str(frame.index.tz) == "UTC" and frame.index.is_monotonic_increasing
    sent = np.array([line.split(",") for line in recorded.sent], dtype="float64")
    np.testing.assert_array_equal(frame["seq"].to_numpy(), sent[:, 0].astype("int64"))
    np.testing.assert_array_equal(frame[["ch1", "ch2", "ch3", "ch4"]].to_numpy(), sent[:, 1:])
    assert tf.sample_rate(frame) == pytest.approx(RATE, rel=0.02)  # from host times stamped per read


def test_known_sine_frequency_recovered_through_the_filters(recorded: Recorded) -> None:
    frame = load(recorded.session, channels=["ch2"])
    x = frame["ch2"]
    assert tf.peak_frequency(x, RATE) == pytest.approx(SINE_HZ, abs=0.5)
    inner = slice(250, -250)  # away from the filter edges

    def rms(f: pd.DataFrame) -> float:
        v = f["ch2"].to_numpy()[inner]
        return float(np.sqrt(np.mean((v - v.mean()) ** 2)))

    base = rms(frame)
    kept = tf.bandpass(frame, 7, 13)  # rate inferred from the host times
    assert rms(kept) == pytest.approx(base, rel=0.1)
    assert tf.peak_frequency(kept["ch2"], RATE) == pytest.approx(SINE_HZ, abs=0.5)
    assert rms(tf.bandpass(frame, 30, 80)) < 0.05 * base
    assert rms(tf.notch(frame, SINE_HZ, quality=5)) < 0.1 * base
    assert rms(tf.lowpass(frame, 5)) < 0.1 * base


def test_gaps_found_exactly_where_injected(recorded: Recorded) -> None:
    frame = load(recorded.session)
    report = gap_report(frame, threshold=PAUSE_S / 2)
    seq0 = int(frame["seq"].iloc[0])
    first, second = recorded.gap_lines
    assert report.seq is not None
    assert report.seq["position"].tolist() == [first, second]
    assert report.seq["missing"].tolist() == list(SEQ_JUMPS)
    assert report.seq["prev_seq"].tolist() == [seq0 + first - 1, seq0 + second - 1 + SEQ_JUMPS[0]]
    assert report.seq["kind"].tolist() == ["gap", "gap"]
    assert report.time["position"].tolist() == [first]
    assert report.time["seconds"].iloc[0] >= PAUSE_S
    manifest = SessionManifest.load(recorded.session)
    assert (manifest.gaps, manifest.missing) == (2, sum(SEQ_JUMPS))  # the reader agrees


def test_recorded_session_through_s3(recorded: Recorded, s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.create_bucket()
    local = load(recorded.session)
    settings = s3_settings(s3)
    for form in ("parquet", "csv.gz"):
        [url] = upload(s3, bucket, [recorded.session], tmp_path, prefix=form, box="box1", form=form)
        remote = load(url, settings=settings)
        pd.testing.assert_frame_equal(remote, local)
        assert gap_report(remote).missing == sum(SEQ_JUMPS)
    lazy = load(url.rsplit("/", 1)[0], settings=settings, lazy=True)
    assert lazy.npartitions == len(committed_batches(recorded.session))
    assert lazy["ch2"].count().compute() == len(local)


def test_reader_uploader_analysis_chain_with_a_window(recorded: Recorded, s3: S3Server, tmp_path: Path) -> None:
    """What sensor-reader recorded and sensor-uploader --once uploaded loads, windowed, like the local session;
    the uploaded manifest's batch times prune the batches: only those overlapping the window are fetched."""
    bucket = s3.create_bucket()
    [url] = upload(s3, bucket, [recorded.session], tmp_path, prefix="lab", box="box1", form="parquet")
    settings = s3_settings(s3, threads=1)
    window = {"start": "1.2s", "duration": "0.5s"}
    fetched: list[str] = []
    client = analysis_s3.client(settings)  # the cached client the loader uses

    def count_get(params: dict[str, object], **_: object) -> None:
        fetched.append(str(params["Key"]))

    client.meta.events.register("provide-client-params.s3.GetObject", count_get)
    try:
        remote = load(url, settings=settings, **window)
    finally:
        client.meta.events.unregister("provide-client-params.s3.GetObject", count_get)
    pd.testing.assert_frame_equal(remote, load(recorded.session, **window))
    batches = [k for k in fetched if not k.endswith(MANIFEST_NAME)]
    planned = [b.location.rsplit("/", 1)[1] for b in plan(url, settings=settings, **window).batches]
    assert [k.rsplit("/", 1)[1] for k in batches] == planned
    assert 1 <= len(batches) < len(committed_batches(recorded.session))


def test_cli_plot_of_the_recording(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rec.png"
    assert (
        main(
            [
                "plot",
                str(recorded.session.parent),
                "-c",
                "ch1,ch2",
                "--start",
                "0.5s",
                "--duration",
                "1s",
                "--bandpass",
                "5,20",
                "--out",
                str(out),
                "--width",
                "800",
                "--height",
                "500",
            ]
        )
        == 0
    )
    image = mpimg.imread(out)
    assert image.shape[:2] == (500, 800)
    assert colour_pixels(image, COLORS[0]) > 500 and colour_pixels(image, COLORS[1]) > 500
    capsys.readouterr()
    assert main(["summary", str(recorded.session), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["missing"] == sum(SEQ_JUMPS) and doc["seq_gaps"] == 2
