"""The wheel the box installs: it carries the dashboard's front-end files, and the build refuses to go without them."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.appliance.conftest import REPO, VENV_BIN

ASSETS = ("web/static/vendor/uplot/uPlot.iife.min.js", "web/static/vendor/uplot/uPlot.min.css")


def committed_tree(dest: Path) -> Path:
    """The committed tree of this checkout (as build-wheelhouse.sh builds it): no git-ignored vendor files."""
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "HEAD"], check=True,
                             capture_output=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True, timeout=60)
    return dest


def build(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """pip wheel of the project alone (no dependencies), built as the wheelhouse builds it."""
    return subprocess.run([str(VENV_BIN / "pip"), "wheel", "--no-deps", "--quiet",
                           "--wheel-dir", str(out), str(src)], capture_output=True, text=True, timeout=300, check=False)


def test_wheel_refuses_to_build_without_the_dashboard_assets(tmp_path: Path) -> None:
    """From a clean tree without `make web-assets`, no wheel is made, and the error says what to run."""
    src = committed_tree(tmp_path / "src")
    assert not (src / ASSETS[0]).exists()
    proc = build(src, tmp_path / "out")
    assert proc.returncode != 0
    assert "refusing to build sensor-box without the dashboard's front-end files" in proc.stdout + proc.stderr
    assert "make web-assets" in proc.stdout + proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.whl"))


def test_wheel_carries_the_dashboard_assets(tmp_path: Path) -> None:
    """With the assets in place, the wheel holds them next to the app's own static files."""
    src = committed_tree(tmp_path / "src")
    for name in ASSETS:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / name, src / name)
    proc = build(src, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "out").glob("sensor_box-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(ASSETS) <= names and "web/static/web/dashboard.js" in names
