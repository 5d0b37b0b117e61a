"""Images: real files of the requested size with the plotted lines in them; the envelope is exact."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from analysis.align import align
from analysis.envelope import EnvelopeBuilder, envelope
from analysis.errors import AnalysisError
from analysis.loading import load
from analysis.plots import COLORS, plot_comparison, plot_overview, plot_waveform, save
from analysis.synthetic import synth_frame
from tests.analysis.conftest import GAP_ROW, SynthData
from tests.analysis.helpers import colour_pixels


def test_waveform_png_has_requested_size_and_lines(synth: SynthData, tmp_path: Path) -> None:
    frame = load(synth.session_a, channels=["ch1", "ch2"], start="1s", duration="2s")
    out = save(plot_waveform(frame, width=900, height=500, dpi=100), tmp_path / "w.png")
    image = mpimg.imread(out)
    assert image.shape[:2] == (500, 900)
    assert colour_pixels(image, COLORS[0]) > 1000 and colour_pixels(image, COLORS[1]) > 1000
    assert colour_pixels(image, COLORS[2]) == 0  # only two channels drawn


def test_dpi_changes_resolution_not_pixel_size(synth: SynthData, tmp_path: Path) -> None:
    frame = load(synth.session_a, channels=["ch1"], duration="1s")
    image = mpimg.imread(save(plot_waveform(frame, width=640, height=480, dpi=150), tmp_path / "w.png"))
    assert image.shape[:2] == (480, 640) and colour_pixels(image, COLORS[0]) > 300


def test_svg_and_pdf_by_extension(synth: SynthData, tmp_path: Path) -> None:
    frame = load(synth.session_a, channels=["ch1"], duration="1s")
    fig = plot_waveform(frame, width=400, height=300)
    svg = save(fig, tmp_path / "w.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and 'width="288pt"' in svg and "#1f77b4" in svg
    assert save(fig, tmp_path / "w.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(AnalysisError, match="unsupported image type"):
        save(fig, tmp_path / "w.bmp")


def test_comparison_overlays_both_recordings(synth: SynthData, tmp_path: Path) -> None:
    a = load(synth.session_a, channels=["ch2"], duration="2s")
    b = load(synth.session_b, channels=["ch2"], duration="2s")
    al = align(a["ch2"], b["ch2"], method="start", labels=("A", "B"))
    image = mpimg.imread(save(plot_comparison([al], width=800, height=400), tmp_path / "c.png"))
    assert image.shape[:2] == (400, 800)
    assert colour_pixels(image, COLORS[0]) > 300 and colour_pixels(image, COLORS[1]) > 300


def test_envelope_matches_brute_force_and_shows_the_gap(synth: SynthData) -> None:
    frame = load(synth.session_a)
    env = envelope(frame, 200)
    edges = env.edges.as_unit("ns").asi8.copy()
    edges[-1] += 1
    t = frame.index.as_unit("ns").asi8
    for i in (0, 57, 199):
        sel = frame["ch3"].to_numpy()[(t >= edges[i]) & (t < edges[i + 1])]
        assert env.mins[i, 2] == sel.min() and env.maxs[i, 2] == sel.max()
    assert env.counts.sum() == len(frame)
    # the 0.1 s gap after row GAP_ROW covers two whole 0.05 s buckets: they stay empty (NaN)
    gap_at = frame.index[GAP_ROW - 1]
    empty = env.centres[np.isnan(env.mins[:, 0])]
    assert len(empty) >= 1 and all(gap_at < c < frame.index[GAP_ROW] for c in empty)


def test_envelope_in_chunks_equals_whole(synth: SynthData) -> None:
    frame = load(synth.session_a)
    whole = envelope(frame, 300)
    b = EnvelopeBuilder(frame.index[0], frame.index[-1], 300, whole.channels)
    for lo in range(0, len(frame), 777):
        b.add(frame.iloc[lo : lo + 777])
    chunked = b.result()
    np.testing.assert_array_equal(chunked.mins, whole.mins)
    np.testing.assert_array_equal(chunked.maxs, whole.maxs)


def test_overview_png_of_many_samples(tmp_path: Path) -> None:
    frame = synth_frame("2026-11-25T00:00:00Z", 1000, 600, 3, noise=0.01)  # 10 min, 600 k rows
    out = save(plot_overview(frame, width=700, height=450, title="overview"), tmp_path / "o.png")
    image = mpimg.imread(out)
    assert image.shape[:2] == (450, 700)
    for color in COLORS[:3]:
        assert colour_pixels(image, color) > 2000  # filled bands, not hairlines


def test_waveform_of_a_long_window_uses_the_envelope(tmp_path: Path) -> None:
    frame = synth_frame("2026-11-25T00:00:00Z", 1000, 60, 1)
    fig = plot_waveform(frame, width=300, height=200)
    assert fig.axes[0].collections and not fig.axes[0].lines  # drawn as a filled band
    image = mpimg.imread(save(fig, tmp_path / "long.png"))
    assert image.shape[:2] == (200, 300) and colour_pixels(image, COLORS[0]) > 500


def test_empty_or_tiny_inputs_are_refused() -> None:
    frame = synth_frame("2026-11-25T00:00:00Z", 10, 1, 1)
    with pytest.raises(AnalysisError):
        plot_waveform(frame.iloc[:1])
    with pytest.raises(AnalysisError, match="at least 50"):
        plot_waveform(frame, width=10)
