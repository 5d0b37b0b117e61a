"""`sensor-analysis`: summaries, plots, comparisons and exports of recorded sessions, from disk or S3."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from analysis.choices import ALIGN_METHODS, EXPORT_FORMATS
from analysis.errors import AnalysisError
from analysis.settings import TABLE, AnalysisSettings
from kernel.logs import setup_logging
from kernel.settings import add_version, writable_file

SOURCES = """\
SRC is a session folder (DATA/<device>/<session>), a device folder (all its sessions), a data directory
(with --device when it holds several devices), or s3://bucket/<prefix>/<box>/<device>[/<session>].
Times: --start/--end take UTC ISO times (2026-11-25T09:00:00Z), offsets from the first sample (90s,
+5min, 2.5) or event markers (marker:LABEL, the first so labelled; marker:LABEL#2 the second);
--duration takes a length (10s).
"""

EPILOG = (
    SOURCES
    + "\n"
    + TABLE.epilog()
    + """

examples:
  sensor-analysis summary /var/lib/sensor/sim0/20261125T090000Z
  sensor-analysis plot DATA --device sim0 --channels ch1,ch2 --start 10s --duration 5s --out fig.png
  sensor-analysis compare SESSION_A SESSION_B --channels ch2 --align xcorr --out cmp.svg
  sensor-analysis overview s3://lab/box1/sim0/20261125T090000Z --out day.png --width 2400
  sensor-analysis markers s3://lab/box1/sim0/20261125T090000Z
  sensor-analysis plot SESSION --start marker:stimulus --duration 5s --out stimulus.png
  sensor-analysis export DATA/sim0 --start 2026-11-25T09:00Z --duration 1h --format parquet --out 9h.parquet
"""
)


SRC_HELP = "session folder, device folder, data directory or s3:// URL (see below)"


def _pair(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in Hz, not {text!r}") from err
    return low, high


def _common(p: argparse.ArgumentParser, window: bool = True, channels: bool = True) -> None:
    p.add_argument(
        "--device", help="device id, when SRC is a data directory or S3 prefix with several devices"
    )
    if channels:
        p.add_argument(
            "--channels",
            "-c",
            action="append",
            metavar="CH[,CH...]",
            help="channels to use (default: all); repeat or comma-separate",
        )
    if window:
        p.add_argument("--start", help="window start: UTC time, offset from the first sample, or marker:LABEL")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--end", help="window end: UTC time, offset from the first sample, or marker:LABEL")
        g.add_argument("--duration", help="window length (10s, 2min, 1h)")
    TABLE.add_arguments(p, ("endpoint_url", "threads", "time_axis"))
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", action="store_true", default=None, help="always show progress bars")
    prog.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress bars")
    TABLE.add_arguments(p, ("log_level",))


def _image(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", "-o", required=True, help="image file: .png, .svg or .pdf")
    p.add_argument("--width", type=int, default=1600, help="width in pixels (default 1600)")
    p.add_argument("--height", type=int, default=900, help="height in pixels (default 900)")
    p.add_argument("--dpi", type=int, default=100, help="dots per inch (default 100)")
    p.add_argument("--title", help="figure title")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detrend", action="store_true", help="remove a linear trend first")
    p.add_argument("--bandpass", type=_pair, metavar="LOW,HIGH", help="zero-phase band-pass, Hz")
    p.add_argument("--notch", type=float, action="append", metavar="HZ", help="zero-phase notch (repeatable)")
    p.add_argument("--moving-average", type=int, metavar="N", help="centred moving average over N samples")
    p.add_argument("--normalise", choices=("zscore", "minmax"), help="scale each channel")


def build_parser() -> argparse.ArgumentParser:
    """The sensor-analysis argument parser."""
    parser = argparse.ArgumentParser(
        prog="sensor-analysis",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version(parser)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def sub_parser(name: str, text: str) -> argparse.ArgumentParser:
        return subcommands.add_parser(
            name,
            help=text,
            description=text[0].upper() + text[1:] + ".",
            epilog=SOURCES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = sub_parser("summary", "span, rate, per-channel statistics and gaps of a source")
    p.add_argument("source", metavar="SRC", help=SRC_HELP)
    _common(p)
    p.add_argument("--gap-threshold", type=float, help="time gap threshold in seconds (default 5 periods)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func="cmd_summary")

    p = sub_parser("gaps", "every sequence-counter gap and time gap")
    p.add_argument("source", metavar="SRC", help=SRC_HELP)
    _common(p, channels=False)
    p.add_argument("--gap-threshold", type=float, help="time gap threshold in seconds (default 5 periods)")
    p.add_argument("--modulus", type=int, help="counter wraps at this value (e.g. 65536)")
    p.add_argument("--limit", type=int, default=1000, help="list at most this many gaps of each kind")
    p.add_argument("--csv", action="store_true", help="print the gap tables as CSV")
    p.set_defaults(func="cmd_gaps")

    p = sub_parser("plot", "waveform of a window")
    p.add_argument("source", metavar="SRC", help=SRC_HELP)
    _common(p)
    _image(p)
    _filters(p)
    p.set_defaults(func="cmd_plot")

    p = sub_parser("compare", "two sources' channels overlaid on a common time grid")
    p.add_argument("source_a", metavar="SRC1", help="first source (blue; its times are the grid)")
    p.add_argument("source_b", metavar="SRC2", help="second source (red; shifted onto the first)")
    _common(p)
    p.add_argument(
        "--channels-b",
        action="append",
        metavar="CH[,CH...]",
        help="channels of SRC2 paired with --channels (default: the same names)",
    )
    p.add_argument(
        "--align",
        choices=ALIGN_METHODS,
        default="start",
        help="start: line up first samples (default); time: wall clock; xcorr: refine by correlation",
    )
    p.add_argument(
        "--offset", type=float, help="seconds subtracted from SRC2's times (overrides --align start)"
    )
    p.add_argument("--max-lag", type=float, help="largest shift --align xcorr may find, seconds")
    p.add_argument("--label-a", help="legend label of SRC1 (default A)")
    p.add_argument("--label-b", help="legend label of SRC2 (default B)")
    _image(p)
    _filters(p)
    p.set_defaults(func="cmd_compare")

    p = sub_parser(
        "overview", "whole source as a min/max envelope, one pixel column per bucket (fast for days)"
    )
    p.add_argument("source", metavar="SRC", help=SRC_HELP)
    _common(p)
    TABLE.add_arguments(p, ("scheduler",))
    _image(p)
    p.add_argument(
        "--from-samples",
        action="store_true",
        help="read every sample even where a stored envelope exists (slower; exact to the pixel)",
    )
    p.set_defaults(func="cmd_overview")

    p = sub_parser("markers", "the event markers placed while recording: time, label, source, user")
    p.add_argument("source", metavar="SRC", help=SRC_HELP)
    _common(p, channels=False)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    out.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func="cmd_markers")

    p = sub_parser("export", "write the selection (and its markers, as OUT.markers.csv) to one Parquet or CSV file")
    p.add_argument("source", metavar="SRC", help=SRC_HELP)
    _common(p)
    p.add_argument("--format", choices=EXPORT_FORMATS, default="parquet", help="parquet (default) or csv")
    p.add_argument("--out", "-o", required=True, help="output file")
    p.set_defaults(func="cmd_export")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the sensor-analysis console script."""
    args = build_parser().parse_args(argv)
    problem = writable_file(args.out) if getattr(args, "out", None) else None
    if problem:
        print(f"sensor-analysis: error: --out: {problem}", file=sys.stderr)
        return 2
    try:  # pandas, matplotlib, Dask: imported only once a command runs, so that --help is quick
        commands = importlib.import_module("analysis.commands")
    except ModuleNotFoundError as err:  # the box installs no analysis extras
        print(f"sensor-analysis: error: the analysis needs {err.name}, which the box does not install: "
              "run it on a laptop or workstation with  pip install 'sensor-box[analysis]'", file=sys.stderr)
        return 2
    func: Callable[[argparse.Namespace, AnalysisSettings], int] = getattr(commands, args.func)
    try:
        settings = AnalysisSettings.from_env(
            os.environ,
            endpoint_url=args.endpoint_url,
            threads=args.threads,
            scheduler=getattr(args, "scheduler", None),
            log_level=args.log_level,
        )
        setup_logging(settings.log_level, os.environ)
        return func(args, settings)
    except AnalysisError as err:
        print(f"sensor-analysis: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder it cannot read or write: one line, not a traceback
        print(f"sensor-analysis: error: {err.strerror or err}{f': {err.filename}' if err.filename else ''}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sensor-analysis: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
