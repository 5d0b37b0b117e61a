"""The manual in docs/: the strict MkDocs build passes, fails on a broken link or anchor, needs no internet."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["reader", "simulator", "uploader", "web", "analysis"]


def build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the project at root into site, as `make docs` runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(root / "mkdocs.yml"),
         "--site-dir", str(site)],
        cwd=root, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manual built once from the checkout."""
    out = tmp_path_factory.mktemp("site")
    result = build(ROOT, out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of mkdocs.yml and docs/ to break."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def test_the_manual_builds_with_every_page(site: Path) -> None:
    """The strict build succeeds and writes a page for every Markdown file in docs/."""
    for page in sorted((ROOT / "docs").glob("*.md")):
        target = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert target.is_file(), page.name


@pytest.mark.parametrize(
    ("link", "complaint"),
    [("[gone](missing.md)", "missing.md"), ("[nowhere](reader.md#no-such-section)", "no-such-section")],
    ids=["page", "anchor"],
)
def test_a_broken_link_fails_the_build(copy: Path, tmp_path: Path, link: str, complaint: str) -> None:
    """A link to a missing page or a missing anchor is a failed build that names it."""
    page = copy / "docs" / "formats.md"
    page.write_text(page.read_text() + f"\nSee {link}.\n")
    result = build(copy, tmp_path / "site")
    assert result.returncode != 0
    assert complaint in result.stderr


def test_the_site_loads_nothing_from_outside(site: Path) -> None:
    """No script or stylesheet comes from another host: the box and the lab may have no internet."""
    outside = re.compile(r"<(?:script|link)\b[^>]*(?:src|href)=\"(?:https?:)?//", re.IGNORECASE)
    for page in site.rglob("*.html"):
        tags = re.findall(r"<(?:script|link)\b[^>]*>", page.read_text())
        assert not [tag for tag in tags if outside.match(tag)], page


def test_pointers_into_the_manual_name_pages_that_exist() -> None:
    """Every `docs/<page>.md` named in the README, the code or the appliance files exists."""
    named: set[str] = set()
    for path in [ROOT / "README.md", *ROOT.glob("*/**/*.py"), *ROOT.glob("ansible/**/*.yml")]:
        if ".venv" not in path.parts:
            named.update(re.findall(r"docs/([\w-]+\.md)", path.read_text()))
    assert named, "no pointer found: the pattern is wrong"
    assert sorted(name for name in named if not (ROOT / "docs" / name).is_file()) == []


@pytest.mark.parametrize("service", SERVICES)
def test_each_settings_table_sits_between_its_markers(service: str) -> None:
    """One pair of markers per service with a table between them, for the settings generator to fill."""
    text = "\n".join(page.read_text() for page in (ROOT / "docs").glob("*.md"))
    found = re.findall(rf"<!-- settings:{service} -->\n(.*?)<!-- /settings:{service} -->", text, re.DOTALL)
    assert len(found) == 1
    assert found[0].strip().startswith("|")
