"""Event markers in the analysis: listed, drawn on plot and overview, exported, and used as window bounds."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from analysis.loading import plan
from analysis.markers import draw_markers, markers_frame
from analysis.plots import figure, plot_waveform
from analysis.synthetic import synth_frame, write_session
from kernel.markers import SOURCE_API, SOURCE_DASHBOARD, append_marker, new_marker

START = "2026-11-25T09:00:00Z"


def at(seconds: float) -> datetime:
    """A time ``seconds`` after the session's first sample."""
    return pd.Timestamp(START).to_pydatetime() + pd.Timedelta(seconds=seconds).to_pytimedelta()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s at 500 Hz with three markers: 'stimulus on' at 2 s and 7 s, 'patient moved' at 5 s."""
    folder = write_session(tmp_path_factory.mktemp("markers"), "dev1", synth_frame(START, 500.0, 10, 2),
                           batch_lines=1000)
    append_marker(folder, new_marker("patient moved", SOURCE_API, at=at(5)))
    append_marker(folder, new_marker("stimulus on", SOURCE_DASHBOARD, "alice", at=at(2)))
    append_marker(folder, new_marker("stimulus on", SOURCE_DASHBOARD, "alice", at=at(7)))
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_markers_are_listed_in_time_order(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "markers", str(session))
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["time", "label", "source", "user", "session"]
    assert lines[1].startswith("2026-11-25T09:00:02.000000Z  stimulus on    dashboard  alice")
    assert lines[2].startswith("2026-11-25T09:00:05.000000Z  patient moved  api        -")
    assert "09:00:07" in lines[3] and len(lines) == 4
    code, out, _ = run(capsys, "markers", str(session), "--json", "--start", "3s")
    assert code == 0 and [m["label"] for m in json.loads(out)] == ["patient moved", "stimulus on"]
    code, out, _ = run(capsys, "markers", str(session), "--csv", "--end", "marker:patient moved")
    assert code == 0 and out.splitlines()[0] == "time,label,source,user,session,id"
    assert [line.split(",")[1] for line in out.splitlines()[1:]] == ["stimulus on"]


def test_a_marker_starts_a_window(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = plan(session, start="marker:stimulus on", duration="2s")
    assert p.start == pd.Timestamp(at(2)) and p.end == pd.Timestamp(at(4))
    assert plan(session, start="marker:Stimulus On#2", end="9s").start == pd.Timestamp(at(7))
    assert plan(session, start="1s", end="marker:patient moved").end == pd.Timestamp(at(5))
    code, _, err = run(capsys, "plot", str(session), "--start", "marker:stimulus off", "--duration", "1s",
                       "--out", str(session.parent / "never.png"))
    assert code == 2 and err.count("\n") == 1
    assert "no marker labelled 'stimulus off' (markers: stimulus on, patient moved)" in err
    code, _, err = run(capsys, "summary", str(session), "--start", "marker:patient moved#3")
    assert code == 2 and "only 1 marker(s) labelled 'patient moved'" in err


def test_plot_draws_the_markers_in_its_window(session: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "window.svg"
    code, _, err = run(capsys, "plot", str(session), "--start", "marker:stimulus on", "--duration", "4s",
                       "--out", str(out), "--width", "800", "--height", "400")
    assert code == 0, err
    svg = out.read_text()
    # matplotlib writes each text's string as a comment beside its glyphs, and the artists' gids as ids
    assert "<!--  stimulus on -->" in svg and "<!--  patient moved -->" in svg
    assert svg.count('id="marker-label-') == 2  # the one at 7 s is outside the window

    frame = synth_frame(START, 500.0, 10, 2)
    fig = plot_waveform(frame, width=800, height=400, markers=markers_frame(plan(session).selection))
    for ax in fig.axes:
        assert len([line for line in ax.lines if (line.get_gid() or "").startswith("marker-")]) == 3
    assert [t.get_text().strip() for t in fig.axes[0].texts] == ["stimulus on", "patient moved", "stimulus on"]
    xs = [line.get_xdata()[0] for line in fig.axes[0].lines if (line.get_gid() or "").startswith("marker-")]
    assert xs == pytest.approx([2.0, 5.0, 7.0])


def test_draw_markers_on_any_time_axes() -> None:
    fig = figure(400, 200)
    ax = fig.subplots()
    ax.set_xlim(0, 10)  # minutes from the origin
    origin = pd.Timestamp("2026-11-25T09:00:00Z")
    drawn = draw_markers(ax, [(origin + pd.Timedelta(minutes=3), "a"), (origin + pd.Timedelta(minutes=12), "b")],
                         origin, 60.0)
    assert drawn == ["a", "b"] and [line.get_xdata()[0] for line in ax.lines] == pytest.approx([3.0, 12.0])
    assert ax.get_xlim() == pytest.approx((0, 12))  # widened to the marker past the data


def test_overview_draws_the_markers(session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "overview.svg"
    code, _, err = run(capsys, "overview", str(session), "--out", str(out), "--width", "600", "--height", "300")
    assert code == 0, err
    assert out.read_text().count('id="marker-label-') == 3


def test_export_writes_the_window_markers_beside_the_data(session: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cut.parquet"
    code, stdout, err = run(capsys, "export", str(session), "--start", "marker:stimulus on", "--end", "6s",
                            "--out", str(out))
    assert code == 0, err
    side = tmp_path / "cut.markers.csv"
    assert f"{side}: 2 markers" in stdout
    table = pd.read_csv(side)
    assert list(table["label"]) == ["stimulus on", "patient moved"]
    assert list(table["time"]) == ["2026-11-25T09:00:02.000000Z", "2026-11-25T09:00:05.000000Z"]
    code, stdout, _ = run(capsys, "export", str(session), "--end", "1s", "--out", str(tmp_path / "early.csv"),
                          "--format", "csv")
    assert code == 0 and "markers" not in stdout and not (tmp_path / "early.markers.csv").exists()


def test_a_session_without_markers_lists_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_session(tmp_path, "dev1", synth_frame(START, 100.0, 2, 1), batch_lines=100)
    code, out, _ = run(capsys, "markers", str(folder))
    assert code == 0 and out.strip() == "no markers"
