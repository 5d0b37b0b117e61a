"""Shared fixtures: each area's fixtures live in tests/fixtures/<area>.py and are registered here."""

pytest_plugins = [
    "tests.fixtures.sim",
    "tests.fixtures.s3",
    "tests.fixtures.disk",
]
