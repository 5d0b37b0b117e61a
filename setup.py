"""Build hooks: the dashboard's front-end files must be inside the wheel, and the version names the commit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BASE_VERSION = "0.1.0"
# Front-end files the dashboard cannot work without (`make web-assets` copies them from npm).
REQUIRED_ASSETS = (
    "web/static/vendor/uplot/uPlot.iife.min.js",
    "web/static/vendor/uplot/uPlot.min.css",
)


def build_commit() -> str:
    """The commit being built: SENSOR_BOX_COMMIT (set by ansible/build-wheelhouse.sh), else git, else ''."""
    commit = os.environ.get("SENSOR_BOX_COMMIT", "").strip()
    if commit or not (ROOT / ".git").exists():
        return commit
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def version() -> str:
    """0.1.0+g<commit> when the commit is known (so every commit is a distinct, traceable build)."""
    commit = build_commit()
    return f"{BASE_VERSION}+g{commit[:12]}" if commit else BASE_VERSION


class BuildPyWithAssets(build_py):
    """build_py that refuses to build a wheel without the dashboard's front-end files."""

    def run(self) -> None:
        """Check the assets (not for editable installs, which serve them from the tree), then build."""
        missing = [name for name in REQUIRED_ASSETS if not (ROOT / name).is_file()]
        if missing and not getattr(self, "editable_mode", False):
            raise SystemExit(
                "refusing to build sensor-box without the dashboard's front-end files "
                f"({', '.join(missing)}): run `make web-assets` (npm ci) first, "
                "or build with ansible/build-wheelhouse.sh, which does"
            )
        super().run()


setup(version=version(), cmdclass={"build_py": BuildPyWithAssets})
