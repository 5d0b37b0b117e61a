"""The playbook: ansible-lint clean (offline, production profile) and a valid syntax."""

from __future__ import annotations

import os
import re
import subprocess

from tests.appliance.conftest import ANSIBLE_DIR, VENV_BIN, need_tools


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run an Ansible tool from the ansible/ folder (its ansible.cfg and .ansible-lint apply)."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "NO_COLOR": "1",
           "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    return subprocess.run(argv, cwd=ANSIBLE_DIR, env=env, check=False, capture_output=True, text=True, timeout=300)


def test_ansible_lint_clean() -> None:
    """ansible-lint passes with the production profile, offline (no collection download)."""
    need_tools("ansible-lint")
    proc = run([str(VENV_BIN / "ansible-lint"), "--offline"])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


def test_playbook_syntax() -> None:
    """site.yml parses with the example inventory."""
    need_tools("ansible-playbook")
    proc = run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory/example/hosts.yml", "site.yml"])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_catches_mistakes(tmp_path) -> None:
    """The lint check is not vacuous: a task without a name and a bare command are reported."""
    need_tools("ansible-lint")
    bad = tmp_path / "bad.yml"
    bad.write_text("---\n- hosts: all\n  tasks:\n    - command: echo hi\n")
    proc = run([str(VENV_BIN / "ansible-lint"), "--offline", str(bad)])
    assert proc.returncode != 0
    assert "name[missing]" in proc.stdout + proc.stderr


def test_role_readmes_list_every_variable() -> None:
    """Each role's README is the one generated from its meta description and commented defaults."""
    from devtools import role_readmes

    assert role_readmes.main(["--check"]) == 0
    for role in ("common", "reader", "uploader", "web"):
        readme = (ANSIBLE_DIR / "roles" / role / "README.md").read_text()
        for name in re.findall(r"^([a-z0-9_]+):", (ANSIBLE_DIR / "roles" / role / "defaults" / "main.yml").read_text(),
                               re.MULTILINE):
            assert f"| `{name}` |" in readme, (role, name)
