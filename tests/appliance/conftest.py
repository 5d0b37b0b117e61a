"""Fixtures for the appliance tests: paths, tool checks, and clean-up of what udev leaves behind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = REPO / "systemd"
UDEV_RULES = REPO / "udev" / "99-sensor-monitor.rules"
ANSIBLE_DIR = REPO / "ansible"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin"
if not (VENV_BIN / "python").exists():
    VENV_BIN = REPO / ".venv" / "bin"


def need_root() -> None:
    """Skip the calling test when not running as root (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")


def need_tools(*names: str) -> None:
    """Skip the calling test when a command is missing (`make system-deps` installs them)."""
    missing = [n for n in names if shutil.which(n) is None and not (VENV_BIN / n).exists()]
    if missing:
        pytest.skip(f"missing tools (run `make system-deps`): {', '.join(missing)}")


def tool(name: str) -> str:
    """Absolute path of a command, preferring the project's venv."""
    found = VENV_BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    assert path, f"{name} not found"
    return path


def _snapshot(roots: list[Path]) -> set[Path]:
    """Every path below the roots (not following links)."""
    seen: set[Path] = set()
    for root in roots:
        if not root.exists():
            continue
        seen.add(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                seen.add(Path(dirpath) / name)
    return seen


@pytest.fixture
def udev_sandbox() -> Iterator[Path]:
    """Install the rules in /etc/udev/rules.d; afterwards restore it and remove the links and db files."""
    target = Path("/etc/udev/rules.d") / UDEV_RULES.name
    backup = target.read_bytes() if target.exists() else None
    # /dev/shm, /dev/pts and /dev/mqueue belong to other processes: only udev's own trees are swept.
    dev_roots = [Path("/dev/sensor"), Path("/dev/serial"), Path("/dev/char"), Path("/run/udev")]
    before = _snapshot(dev_roots)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(UDEV_RULES, target)
    try:
        yield target
    finally:
        if backup is None:
            target.unlink(missing_ok=True)
        else:
            target.write_bytes(backup)
        for path in sorted(_snapshot(dev_roots) - before, key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


# systemd/ holds each role's unit template rendered with the defaults (a test checks they agree).
UNIT_TEMPLATES = {
    "sensor-reader@.service": "reader",
    "sensor-uploader.service": "uploader",
    "sensor-web.service": "web",
    "sensor.target": "common",
}


def role_defaults(role: str) -> dict:
    """The variables a role sees by default: common's and its own, their templates resolved as Ansible would."""
    import jinja2
    import yaml

    values: dict = {}
    for name in dict.fromkeys(["common", role]):
        values.update(yaml.safe_load((ANSIBLE_DIR / "roles" / name / "defaults" / "main.yml").read_text()))
    env = jinja2.Environment()
    for _ in range(5):  # defaults refer to defaults (common_venv_dir uses common_install_dir)
        for key, value in values.items():
            if isinstance(value, str) and "{{" in value:
                try:
                    values[key] = env.from_string(value).render(**values).strip()
                except jinja2.UndefinedError:
                    pass  # needs inventory facts (inventory_hostname): not used by the templates rendered here
    return values


def render_role_template(role: str, name: str, **overrides: object) -> str:
    """Render a role's template as Ansible does (trim_blocks), with the role defaults and overrides."""
    import jinja2

    template = (ANSIBLE_DIR / "roles" / role / "templates" / name).read_text()
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(**{**role_defaults(role), **overrides})


def render_udev_rules(**overrides: object) -> str:
    """Render the reader role's udev rules template with its defaults, variables overridden."""
    return render_role_template("reader", "99-sensor-monitor.rules.j2", **overrides)
