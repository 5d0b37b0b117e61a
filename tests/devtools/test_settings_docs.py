"""The docs' settings tables and sensor.env.example are generated from the field tables and kept current."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import settings_docs
from kernel.settings import markdown_table

ROOT = Path(__file__).resolve().parents[2]


def test_generated_files_are_up_to_date() -> None:
    """Fails when a field table changed and `python -m devtools.settings_docs` was not run."""
    assert settings_docs.stale() == []


def test_check_command_exits_0() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "devtools.settings_docs", "--check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def _copy(tmp_path: Path) -> Path:
    for page in settings_docs.pages(ROOT):
        target = tmp_path / page.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, target)
    shutil.copy(ROOT / settings_docs.ENV_EXAMPLE, tmp_path / settings_docs.ENV_EXAMPLE)
    return tmp_path


def test_a_stale_table_is_found_and_rewritten_inside_its_markers_only(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    reader_table = markdown_table(settings_docs.tables()["reader"])
    page = next(p for p in settings_docs.pages(root) if reader_table in p.read_text())
    before = page.read_text()
    page.write_text(before.replace("| commit a batch after this many lines… |", "| an old meaning |"))
    (root / settings_docs.ENV_EXAMPLE).write_text("#SENSOR_PORT=\n")
    assert sorted(settings_docs.stale(root)) == sorted([page, root / settings_docs.ENV_EXAMPLE])
    assert settings_docs.main(["--check", "--root", str(root)]) == 1
    assert settings_docs.main(["--root", str(root)]) == 0
    assert page.read_text() == before and settings_docs.stale(root) == []


def test_every_service_needs_its_markers(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    for page in settings_docs.pages(root):
        page.write_text(page.read_text().replace("<!-- settings:web -->", "").replace("<!-- /settings:web -->", ""))
    with pytest.raises(SystemExit, match="web"):
        settings_docs.stale(root)


def test_the_env_example_names_every_variable_once() -> None:
    text = (ROOT / settings_docs.ENV_EXAMPLE).read_text()
    assignments = [line[1:].split("=")[0] for line in text.splitlines() if line.startswith("#") and "=" in line
                   and line[1:2].isupper()]
    variables = {v for table in settings_docs.tables().values() for f in table.fields for v in f.variables}
    assert sorted(assignments) == sorted(variables)
