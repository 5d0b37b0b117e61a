"""Every console script: `--version`, a quick `--help` (no heavy imports), and the kernel's path checks."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from kernel.settings import existing_parent, writable_dir, writable_file

BIN = Path(sys.executable).parent
SCRIPTS = {"sensor-reader": "reader.cli", "sensor-sim": "simulator.cli", "sensor-uploader": "uploader.cli",
           "sensor-web": "web.cli", "sensor-analysis": "analysis.cli"}
HEAVY = ("pandas", "matplotlib", "dask", "django", "boto3", "botocore", "pyarrow", "scipy", "luigi", "daphne")


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_version(script: str) -> None:
    done = subprocess.run([str(BIN / script), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{script} {metadata.version('sensor-box')}"


@pytest.mark.parametrize("module", sorted(SCRIPTS.values()))
def test_help_imports_nothing_heavy(module: str) -> None:
    probe = f"""
import contextlib, io, sys
import {module} as cli
out = io.StringIO()
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):
    cli.main(["--help"])
assert "usage:" in out.getvalue(), out.getvalue()
print(",".join(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"--help of {module} imported {done.stdout.strip()}"


def test_writable_dir(tmp_path: Path, read_only_dir: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert writable_dir(tmp_path) is None and writable_dir(tmp_path / "new" / "deeper") is None
    assert writable_dir(afile) == f"{afile} is not a directory"
    assert writable_dir(afile / "sub") == f"{afile / 'sub'} cannot be created: {afile} is not a directory"
    assert "proc filesystem" in (writable_dir(Path("/proc/sensor")) or "")
    assert writable_dir(read_only_dir) == f"{read_only_dir} is not writable"
    assert writable_dir(read_only_dir / "x") == f"{read_only_dir / 'x'} cannot be created: {read_only_dir} is not writable"


def test_writable_file_and_existing_parent(tmp_path: Path) -> None:
    assert writable_file(tmp_path / "new" / "fig.png") is None
    assert writable_file(tmp_path) == f"{tmp_path} is a directory, not a file"
    assert existing_parent(tmp_path / "link") is None
    missing = tmp_path / "missing"
    assert existing_parent(missing / "link") == f"folder {missing} does not exist (it is not created for you)"
    assert not missing.exists()
