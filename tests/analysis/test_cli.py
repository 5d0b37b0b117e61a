"""The sensor-analysis command line: each sub-command's output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis.cli import main
from analysis.loading import load
from analysis.plots import COLORS
from kernel.batch import read_batch_frame
from tests.analysis.conftest import GAP_LEN, GAP_ROW, SynthData
from tests.analysis.helpers import colour_pixels
from tests.analysis.uploads import upload
from tests.fixtures.s3 import S3Server, free_port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_text_and_json(synth: SynthData, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "summary", str(synth.session_a))
    assert code == 0 and "rate_hz: 500.0" in out and f"{GAP_LEN} samples missing" in out
    code, out, _ = run(capsys, "summary", str(synth.data_dir), "--device", "dev1", "--json", "-c", "ch2")
    doc = json.loads(out)
    assert (
        code == 0 and doc["rows"] == len(synth.frame_a) + len(synth.frame_b) and list(doc["stats"]) == ["ch2"]
    )


def test_gaps_csv(synth: SynthData, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "gaps", str(synth.session_a), "--csv")
    assert code == 0
    first = out.splitlines()[1].split(",")
    assert first[0] == str(GAP_ROW) and first[4] == str(GAP_LEN)


def test_plot_with_filters_writes_an_image_of_the_requested_size(
    synth: SynthData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fig.png"
    code, stdout, _ = run(
        capsys,
        "plot",
        str(synth.session_a),
        "--channels",
        "ch2,ch3",
        "--start",
        "1s",
        "--duration",
        "2s",
        "--bandpass",
        "5,15",
        "--out",
        str(out),
        "--width",
        "1000",
        "--height",
        "600",
        "--dpi",
        "120",
    )
    assert code == 0 and stdout.strip() == str(out)
    image = mpimg.imread(out)
    assert image.shape[:2] == (600, 1000)
    assert colour_pixels(image, COLORS[0]) > 500 and colour_pixels(image, COLORS[1]) > 500


def test_compare_and_overview(synth: SynthData, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cmp_png = tmp_path / "cmp.png"
    code, _, _ = run(
        capsys,
        "compare",
        str(synth.session_a),
        str(synth.session_b),
        "-c",
        "ch2",
        "--duration",
        "2s",
        "--align",
        "xcorr",
        "--max-lag",
        "0.2",
        "--out",
        str(cmp_png),
        "--width",
        "700",
        "--height",
        "350",
    )
    image = mpimg.imread(cmp_png)
    assert code == 0 and image.shape[:2] == (350, 700)
    assert colour_pixels(image, COLORS[0]) > 200 and colour_pixels(image, COLORS[1]) > 200
    ov = tmp_path / "ov.svg"
    code, _, _ = run(capsys, "overview", str(synth.data_dir), "--device", "dev1", "--out", str(ov))
    assert code == 0 and "<svg" in ov.read_text()


@pytest.mark.parametrize("form", ["parquet", "csv"])
def test_export_round_trips(
    synth: SynthData, tmp_path: Path, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"out.{form}"
    code, stdout, _ = run(
        capsys,
        "export",
        str(synth.session_a),
        "--format",
        form,
        "--out",
        str(out),
        "--start",
        "1s",
        "--duration",
        "5s",
    )
    assert code == 0 and stdout.strip() == f"{out}: 2500 rows"  # 5 s at 500 Hz
    expected = load(synth.session_a, start="1s", duration="5s")
    if form == "parquet":
        table = pq.read_table(out)
        assert str(table.schema.field("host_time").type) == "timestamp[us, tz=UTC]"
        got = table.to_pandas().set_index("sample_time").drop(columns="host_time")
    else:
        got = read_batch_frame(out)  # the export is a valid batch file
    pd.testing.assert_frame_equal(got, expected, check_index_type=False)


def test_s3_source_and_endpoint_flag(
    s3: S3Server,
    synth: SynthData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    [url] = upload(s3, s3.create_bucket(), [synth.session_a], tmp_path, prefix="lab", box="box9", form="csv.gz")
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SENSOR_S3_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the flag wins over the environment
    out = tmp_path / "s3.png"
    code, _, err = run(
        capsys,
        "plot",
        url,
        "--endpoint-url",
        s3.endpoint_url,
        "-c",
        "ch1",
        "--duration",
        "1s",
        "--out",
        str(out),
        "--width",
        "400",
        "--height",
        "300",
    )
    assert code == 0, err
    assert mpimg.imread(out).shape[:2] == (300, 400)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["summary", "{data}/dev1/20990101T000000Z"], "no such session"),
        (["plot", "{data}/dev1", "--start", "2h", "--out", "{tmp}/x.png"], "outside the data"),
        (["plot", "{data}/dev1", "-c", "ch7", "--out", "{tmp}/x.png"], "unknown channel(s) ch7"),
        (["plot", "{data}/dev1", "--out", "{tmp}/x.gif"], "unsupported image type"),
        (["summary", "s3://lab/x/y", "--endpoint-url", "http://127.0.0.1:{port}"], "cannot reach S3"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    synth: SynthData,
    tmp_path: Path,
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("SENSOR_S3_CONNECT_TIMEOUT", "1")
    argv = [a.format(data=synth.data_dir, tmp=tmp_path, port=free_port()) for a in args]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sensor-analysis: error: ") and message in err
    assert not list(tmp_path.glob("x.*"))


def test_console_script_help_and_error(synth: SynthData) -> None:
    exe = Path(sys.executable).parent / "sensor-analysis"
    helped = subprocess.run([str(exe), "--help"], check=False, capture_output=True, text=True, timeout=60)
    assert (
        helped.returncode == 0 and "SENSOR_S3_ENDPOINT_URL" in helped.stdout and "overview" in helped.stdout
    )
    failed = subprocess.run(
        [str(exe), "summary", str(synth.data_dir)], check=False, capture_output=True, text=True, timeout=60
    )
    assert failed.returncode == 2 and "several devices (dev1, dev2)" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_progress_bar_on_request(synth: SynthData, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "summary", str(synth.session_a), "--progress")
    assert code == 0 and "loading" in err and "/5 [" in err and "batch" in err
    code, _, err = run(capsys, "summary", str(synth.session_a))
    assert code == 0 and err == ""  # not a terminal: no bar
