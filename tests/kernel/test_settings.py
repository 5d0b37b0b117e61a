"""The settings framework: flags over environment, parsers, one-line messages naming flag and variable."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from kernel import settings as ks
from kernel.settings import Field, SettingsError, Table


@dataclasses.dataclass(frozen=True)
class Demo:
    """A small settings object."""

    data_dir: Path | None = None
    batch: int = 10
    fast: bool = False
    quota: int | None = None
    delimiter: str = ","
    level: str = "INFO"


TABLE = Table("demo", (
    Field("data_dir", "X_DATA_DIR", "--data-dir", ks.path, help="where data goes"),
    Field("batch", "X_BATCH", "--batch", ks.integer, check=ks.at_least(1), help="lines per batch"),
    Field("fast", "X_FAST", "--fast", ks.boolean, switch=True, help="go fast"),
    Field("quota", "X_QUOTA", None, ks.size, check=ks.above(0), shown_default="unset", help="byte quota"),
    Field("delimiter", "X_DELIMITER", "--delimiter", help="field delimiter"),
    Field("level", "X_LOG_LEVEL", "--log-level", ks.log_level, also=("X_LEVEL",), help="log level"),
    Field("token", "X_TOKEN", external=True, help="read by a library"),
), Demo)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    TABLE.add_arguments(parser)
    return parser.parse_args(argv)


def test_flags_override_the_environment_and_defaults_fill_the_rest() -> None:
    env = {"X_BATCH": "5", "X_FAST": "yes", "X_DATA_DIR": "/env", "X_QUOTA": "2G", "X_LEVEL": "debug"}
    s = TABLE.build(parse(["--batch", "7", "--data-dir", "/flag"]), env)
    assert s == Demo(data_dir=Path("/flag"), batch=7, fast=True, quota=2 * 1024**3, level="DEBUG")
    assert TABLE.build(parse([]), {}) == Demo()


def test_empty_means_unset_but_a_blank_delimiter_is_a_value() -> None:
    s = TABLE.build(parse([]), {"X_BATCH": "", "X_LOG_LEVEL": "  ", "X_DELIMITER": " "})
    assert (s.batch, s.level, s.delimiter) == (10, "INFO", " ")


@pytest.mark.parametrize("raw, value", [(w, True) for w in ("1", "true", "YES", "on")]
                         + [(w, False) for w in ("0", "false", "no", "Off")])
def test_booleans(raw: str, value: bool) -> None:
    assert ks.boolean(raw) is value


def test_sizes_and_levels() -> None:
    assert (ks.size("8388608"), ks.size("512M"), ks.size("1.5GiB")) == (8388608, 512 * 1024**2, 1610612736)
    with pytest.raises(ValueError, match="not a size"):
        ks.size("lots")
    with pytest.raises(ValueError, match="DEBUG, INFO"):
        ks.log_level("loud")


@pytest.mark.parametrize("argv, env, message", [
    ([], {"X_FAST": "maybe"}, "X_FAST='maybe': expected one of 1/0, true/false, yes/no, on/off (flag --fast)"),
    (["--batch", "many"], {}, "--batch: expected an integer (got 'many') (variable X_BATCH)"),
    ([], {"X_QUOTA": "lots"}, "X_QUOTA='lots': not a size"),
    (["--batch", "0"], {}, "--batch / X_BATCH: must be >= 1 (got 0)"),
])
def test_messages_name_the_flag_and_the_variable(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        TABLE.build(parse(argv), env)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_every_failed_check_in_one_line() -> None:
    with pytest.raises(SettingsError) as info:
        TABLE.validate(Demo(batch=0, quota=-1))
    assert str(info.value) == "--batch / X_BATCH: must be >= 1 (got 0); X_QUOTA: must be > 0 (got -1)"


def test_a_service_raises_its_own_error_class() -> None:
    class DemoError(SettingsError):
        """The service's error."""

    table = Table("demo", TABLE.fields, Demo, DemoError)
    with pytest.raises(DemoError, match="X_BATCH"):
        table.build(None, {"X_BATCH": "x"})


def test_docs_table_help_and_example_come_from_the_table() -> None:
    lines = ks.markdown_table(TABLE).splitlines()
    assert lines[:2] == ["| env | flag | default | meaning |", "|---|---|---|---|"]
    assert "| `X_BATCH` | `--batch` | 10 | lines per batch |" in lines
    assert "| `X_QUOTA` | — | unset | byte quota |" in lines
    assert "| `X_LOG_LEVEL` (else `X_LEVEL`) | `--log-level` | `INFO` | log level |" in lines
    assert "| `X_TOKEN` | — | — | read by a library |" in lines
    assert "X_LEVEL" in TABLE.epilog() and "X_TOKEN" in TABLE.epilog()
    other = Table("other", (Field("level", "X_LOG_LEVEL", help="its level", default="WARNING"),))
    example = ks.env_example([TABLE, other])
    box_wide, demo = example.split("# ---- demo ----")
    assert "# demo: log level (default: INFO)\n# other: its level (default: WARNING)\n#X_LOG_LEVEL=INFO" in box_wide
    assert "# lines per batch (default: 10; flag --batch)\n#X_BATCH=10" in demo and "X_LOG_LEVEL" not in demo
