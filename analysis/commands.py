"""The CLI's sub-commands: each takes parsed arguments and settings, prints or writes, returns an exit code."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import pandas as pd

from analysis import transforms
from analysis.align import align
from analysis.errors import AnalysisError
from analysis.export import export_tables
from analysis.gaps import gap_report
from analysis.loading import Plan, iter_tables, load_plan, plan
from analysis.markers import in_window, markers_csv, markers_frame, markers_table
from analysis.overview import overview_envelope
from analysis.plots import plot_comparison, plot_overview, plot_waveform, save
from analysis.settings import AnalysisSettings
from analysis.stats import channel_stats, describe
from analysis.timequality import time_quality, time_quality_text

log = logging.getLogger(__name__)


def _bar(args: argparse.Namespace, total: int, desc: str) -> Any:
    """A tqdm bar on stderr: shown on a terminal or with --progress, hidden with --no-progress."""
    from tqdm import tqdm

    show = args.progress if args.progress is not None else sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="batch", file=sys.stderr, disable=not show, leave=False)


def _channels(args: argparse.Namespace, attr: str = "channels") -> list[str] | None:
    raw = getattr(args, attr, None)
    if not raw:
        return None
    return [c.strip() for part in raw for c in part.split(",") if c.strip()]


def _plan(
    args: argparse.Namespace,
    settings: AnalysisSettings,
    source: str,
    channels: list[str] | None,
    need_spans: bool = False,
) -> Plan:
    return plan(
        source,
        device=args.device,
        start=args.start,
        end=args.end,
        duration=args.duration,
        channels=channels,
        settings=settings,
        need_spans=need_spans,
    )


def _load(
    args: argparse.Namespace, settings: AnalysisSettings, source: str, channels: list[str] | None
) -> pd.DataFrame:
    return _load_plan(args, settings, _plan(args, settings, source, channels))


def _load_plan(args: argparse.Namespace, settings: AnalysisSettings, p: Plan) -> pd.DataFrame:
    with _bar(args, len(p.batches), "loading") as bar:
        return load_plan(p, settings, bar.update)


def _apply_filters(args: argparse.Namespace, frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the optional --detrend/--bandpass/--notch/--moving-average/--normalise flags, in that order."""
    if getattr(args, "detrend", False):
        frame = transforms.detrend(frame)
    if getattr(args, "bandpass", None):
        frame = transforms.bandpass(frame, *args.bandpass)
    for f in getattr(args, "notch", None) or []:
        frame = transforms.notch(frame, f)
    if getattr(args, "moving_average", None):
        frame = transforms.moving_average(frame, args.moving_average)
    if getattr(args, "normalise", None):
        frame = transforms.normalise(frame, args.normalise)
    return frame


def cmd_summary(args: argparse.Namespace, settings: AnalysisSettings) -> int:
    """Print what a source holds: sessions, span, rate, time quality, per-channel statistics and gaps."""
    p = _plan(args, settings, args.source, _channels(args))
    with _bar(args, len(p.batches), "loading") as bar:
        frame = load_plan(p, settings, bar.update)
    info = describe(frame)
    stats = channel_stats(frame)
    gaps = gap_report(frame, threshold=args.gap_threshold)
    quality = time_quality(s.manifest for s in p.selection.sessions)
    if args.json:
        out = {
            **info,
            "stats": json.loads(stats.to_json(orient="index")),
            "seq_gaps": 0 if gaps.seq is None else len(gaps.seq),
            "missing": gaps.missing,
            "time_gaps": len(gaps.time),
            "time_quality": quality,
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    for key in ("start", "end", "seconds", "rows", "rate_hz"):
        if key in info:
            print(f"{key:>8}: {info[key]}")
    print(f"{'columns':>8}: {', '.join(info['columns'])}")
    print()
    print(stats.to_string(float_format=lambda v: f"{v:.6g}"))
    print()
    print(time_quality_text(quality))
    print()
    print(gaps.to_text(limit=10))
    return 0


def cmd_gaps(args: argparse.Namespace, settings: AnalysisSettings) -> int:
    """Print every sequence-counter gap and time gap, as text or CSV."""
    frame = _load(args, settings, args.source, None)
    report = gap_report(frame, threshold=args.gap_threshold, modulus=args.modulus)
    if args.csv:
        if report.seq is not None:
            report.seq.to_csv(sys.stdout, index=False)
        report.time.to_csv(sys.stdout, index=False)
    else:
        print(report.to_text(limit=args.limit))
    return 0


def cmd_plot(args: argparse.Namespace, settings: AnalysisSettings) -> int:
    """Draw the waveform of a window to an image file."""
    chans = _channels(args)
    p = _plan(args, settings, args.source, chans)
    frame = _apply_filters(args, _load_plan(args, settings, p))
    fig = plot_waveform(
        frame,
        transforms.channel_names(frame, chans and [c for c in chans if c != "seq"]),
        width=args.width,
        height=args.height,
        dpi=args.dpi,
        title=args.title,
        markers=in_window(markers_frame(p.selection, settings), p.start, p.end),
    )
    print(save(fig, args.out, args.dpi))
    return 0


def cmd_compare(args: argparse.Namespace, settings: AnalysisSettings) -> int:
    """Overlay the same (or paired) channels of two sources on a common grid."""
    chans_a = _channels(args) or None
    chans_b = _channels(args, "channels_b") or chans_a
    a = _load(args, settings, args.source_a, chans_a)
    b = _load(args, settings, args.source_b, chans_b)
    names_a = transforms.channel_names(a, None if chans_a is None else [c for c in chans_a if c != "seq"])
    names_b = transforms.channel_names(b, None if chans_b is None else [c for c in chans_b if c != "seq"])
    if len(names_a) != len(names_b):
        raise AnalysisError(f"cannot pair {len(names_a)} channel(s) with {len(names_b)}; use --channels-b")
    a, b = _apply_filters(args, a), _apply_filters(args, b)
    pairs = []
    for ca, cb in zip(names_a, names_b, strict=True):
        al = align(
            a[ca],
            b[cb],
            method=args.align,
            offset=args.offset,
            max_lag=args.max_lag,
            labels=(f"{args.label_a or 'A'}:{ca}", f"{args.label_b or 'B'}:{cb}"),
        )
        log.info("%s vs %s: offset %.6f s", ca, cb, al.offset.total_seconds())
        pairs.append(al)
    fig = plot_comparison(pairs, width=args.width, height=args.height, dpi=args.dpi, title=args.title)
    print(save(fig, args.out, args.dpi))
    return 0


def cmd_overview(args: argparse.Namespace, settings: AnalysisSettings) -> int:
    """Draw a whole source as a min/max envelope: from stored envelopes where they exist, else batch by batch."""
    p = _plan(args, settings, args.source, _channels(args))  # batch spans: only of those read from samples
    with _bar(args, 0, "overview") as bar:
        result = overview_envelope(p, settings, args.width, from_samples=args.from_samples, bar=bar)
    if result.note:
        print(f"sensor-analysis: {result.note}", file=sys.stderr)
    fig = plot_overview(result.envelope, width=args.width, height=args.height, dpi=args.dpi, title=args.title,
                        markers=in_window(markers_frame(p.selection, settings), p.start, p.end))
    print(save(fig, args.out, args.dpi))
    return 0


def cmd_export(args: argparse.Namespace, settings: AnalysisSettings) -> int:
    """Write the selection to one Parquet or CSV file, batch by batch."""
    p = _plan(args, settings, args.source, _channels(args))
    with _bar(args, len(p.batches), "export") as bar:
        tables = iter_tables(p, settings, bar.update, decimals=args.format == "csv")  # keep the device's digits
        path, rows = export_tables(tables, args.out, args.format)
    print(f"{path}: {rows} rows")
    markers = in_window(markers_frame(p.selection, settings), p.start, p.end)
    if len(markers):  # the events of the exported span, beside the data
        side = path.with_name(f"{path.stem}.markers.csv")
        side.write_text(markers_csv(markers))
        print(f"{side}: {len(markers)} markers")
    return 0


def cmd_markers(args: argparse.Namespace, settings: AnalysisSettings) -> int:
    """List the event markers of a source: time, label, source, user, session."""
    p = _plan(args, settings, args.source, None)
    markers = in_window(markers_frame(p.selection, settings), p.start, p.end)
    if args.csv:
        sys.stdout.write(markers_csv(markers))
    elif args.json:
        out = [{**row, "time": row["time"].isoformat(), "user": row["user"] or None}
               for row in markers.to_dict(orient="records")]
        print(json.dumps(out, indent=2))
    else:
        print(markers_table(markers))
    return 0
