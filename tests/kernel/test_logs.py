"""One logging set-up: timestamps unless stderr is the journal stream systemd connected."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.logs import setup_logging, to_journal


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """Give the test the root logger and restore its handlers and level afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield root
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()
    root.handlers[:] = saved
    root.setLevel(level)


def _log_to(path: Path, environ: dict[str, str]) -> str:
    with open(path, "w") as stream:
        setup_logging("INFO", environ, stream=stream)
        logging.getLogger("kernel.test").info("hello %s", "there")
        logging.getLogger("kernel.test").debug("not shown")
    return path.read_text()


def test_no_timestamp_on_the_journal_stream(tmp_path: Path, root_logger: logging.Logger) -> None:
    path = tmp_path / "journal"
    path.touch()
    st = os.stat(path)
    text = _log_to(path, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert text == "INFO kernel.test: hello there\n"


@pytest.mark.parametrize("journal", [None, "1:2", "garbage"])
def test_timestamps_elsewhere(tmp_path: Path, root_logger: logging.Logger, journal: str | None) -> None:
    environ = {} if journal is None else {"JOURNAL_STREAM": journal}
    text = _log_to(tmp_path / "stderr", environ)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO kernel.test: hello there\n", text), text


def test_one_handler_and_a_log_file(tmp_path: Path, root_logger: logging.Logger) -> None:
    setup_logging("INFO", {})
    setup_logging("WARNING", {}, log_file=tmp_path / "sub" / "daemon.log")
    assert len(root_logger.handlers) == 1 and root_logger.level == logging.WARNING
    logging.getLogger("kernel.test").warning("to the file")
    root_logger.handlers[0].flush()
    assert (tmp_path / "sub" / "daemon.log").read_text().endswith(" WARNING kernel.test: to the file\n")


def test_a_stream_without_a_file_is_not_the_journal() -> None:
    import io

    assert to_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"}) is False
