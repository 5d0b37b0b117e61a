"""Run the benchmarks: `python -m bench [reader|uploader|web|analysis ...]` (all by default)."""

from __future__ import annotations

import importlib
import inspect
import sys
import time

AREAS = ["reader", "sample_time", "uploader", "web", "web_memory", "analysis", "overview"]


def main(argv: list[str]) -> int:
    """Run each named benchmark's main() in turn; figures are printed by each."""
    areas = argv or AREAS
    failed = []
    for area in areas:
        if area not in AREAS:
            print(f"unknown benchmark {area!r}; choose from {', '.join(AREAS)}", file=sys.stderr)
            return 2
        print(f"== {area} ==", flush=True)
        t0 = time.monotonic()
        try:
            bench_main = importlib.import_module(f"bench.{area}").main
            bench_main(*([[]] if inspect.signature(bench_main).parameters else []))  # defaults, not our argv
        except Exception as err:  # noqa: BLE001 - one failing benchmark must not hide the others' figures
            print(f"{area} benchmark failed: {type(err).__name__}: {err}", flush=True)
            failed.append(area)
        print(f"({area}: {time.monotonic() - t0:.0f} s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
