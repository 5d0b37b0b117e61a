"""Generate the docs' settings tables and `sensor.env.example` from the services' field tables.

    python -m devtools.settings_docs           write them
    python -m devtools.settings_docs --check   exit 1 (naming the files) when any is out of date

Each service's table goes between `<!-- settings:SERVICE -->` and `<!-- /settings:SERVICE -->` in whichever
of README.md and docs/*.md hold those markers; everything outside the markers is left as it is.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path

from kernel.settings import Table, env_example, markdown_table

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = "sensor.env.example"
# service → module holding its TABLE; the box's services first (the order of sensor.env.example).
SERVICES = {
    "reader": "reader.settings",
    "uploader": "uploader.settings",
    "web": "web.config",
    "analysis": "analysis.settings",
    "simulator": "simulator.settings",
}
REGION = re.compile(r"(<!-- settings:([\w-]+) -->\n)(.*?)(<!-- /settings:\2 -->)", re.DOTALL)


def tables() -> dict[str, Table]:
    """Every service's field table."""
    return {name: importlib.import_module(module).TABLE for name, module in SERVICES.items()}


def pages(root: Path = ROOT) -> list[Path]:
    """The Markdown files that may hold settings markers."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def fill(text: str, by_service: dict[str, Table]) -> tuple[str, set[str]]:
    """The text with every marked region holding its service's current table, and the services found."""
    found: set[str] = set()

    def region(m: re.Match[str]) -> str:
        service = m.group(2)
        if service not in by_service:
            raise SystemExit(f"settings_docs: unknown service in marker <!-- settings:{service} -->")
        found.add(service)
        return f"{m.group(1)}\n{markdown_table(by_service[service])}\n\n{m.group(4)}"

    return REGION.sub(region, text), found


def expected(root: Path = ROOT) -> dict[Path, str]:
    """What every generated file should hold (only pages with markers, and the env example)."""
    by_service = tables()
    out: dict[Path, str] = {}
    seen: set[str] = set()
    for page in pages(root):
        text = page.read_text()
        new, found = fill(text, by_service)
        if found:
            out[page] = new
            seen |= found
    missing = sorted(set(by_service) - seen)
    if missing:
        raise SystemExit(f"settings_docs: no <!-- settings:NAME --> markers for {', '.join(missing)} in "
                         "README.md or docs/*.md")
    out[root / ENV_EXAMPLE] = env_example(list(by_service.values()))
    return out


def stale(root: Path = ROOT) -> list[Path]:
    """The generated files that differ from what the tables give."""
    return [p for p, text in expected(root).items() if not p.is_file() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m devtools.settings_docs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if anything is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        old = stale(args.root)
        for path in old:
            print(f"out of date: {path.relative_to(args.root)} (run python -m devtools.settings_docs)")
        return 1 if old else 0
    for path, text in expected(args.root).items():
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
