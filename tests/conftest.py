"""Shared fixtures and suite rules: each area's fixtures live in tests/fixtures/<area>.py and are registered here.

Rules: a test that needs root is marked `root` (also when it only uses a root fixture), so that
`pytest -m "not root"` runs what an unprivileged developer can; under CI (CI=true) a skipped test fails
the run, because a missing tool or missing root must not pass as green.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.fixtures.sim",
    "tests.fixtures.s3",
    "tests.fixtures.disk",
]

# Fixtures that mount filesystems, install udev rules or boot containers: their users need root.
ROOT_FIXTURES = {"tmpfs_factory", "read_only_dir", "udev_sandbox", "box"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses a root fixture as `root`."""
    for item in items:
        if ROOT_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.root)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI, fail the run when any test was skipped (a missing tool or root is an error there)."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped: under CI a skip is a failure (missing tool or root)",
                            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
