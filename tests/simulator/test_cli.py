"""sensor-sim as a process: --help, a counted run with --record, the control FIFO, signals, periodic faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.sim import LinkReader
from tests.support import wait_for

SIM = [sys.executable, "-m", "simulator.cli"]
SCRIPT = Path(sys.executable).with_name("sensor-sim")  # the console script installed with the project


@pytest.fixture
def run_sim(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start sensor-sim processes (killed at teardown if still running)."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([*SIM, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


def test_help_explains_flags_and_commands() -> None:
    out = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30, check=True).stdout
    for text in ("--link PATH", "--rate HZ", "--checksum", "--control PATH", "examples:", "unplug", "replug",
                 "garbage [N]", "SIGTERM"):
        assert text in out


def test_bad_flags_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    res = subprocess.run([*SIM, "--link", str(tmp_path / "s"), "--channels", "0", "--faults", "fire",
                          "--delimiter", "."], check=False, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    for problem in ("--channels must be 1..1024", "--faults: unknown fire", "--delimiter/--decimals"):
        assert problem in res.stderr
    assert not (tmp_path / "s").exists()


def test_counted_run_with_record(tmp_path: Path, run_sim: Callable[..., subprocess.Popen[bytes]]) -> None:
    link, record = tmp_path / "sim0", tmp_path / "sent.txt"
    proc = run_sim("--link", str(link), "--channels", "3", "--rate", "0", "--count", "500", "--seq", "--header",
                   "--checksum", "--record", str(record), "--linger", "10")
    wait_for(link.exists, 15, "the link")
    reader = LinkReader(link)
    try:
        lines = reader.read_lines(501)
        assert proc.wait(15) == 0  # exits once the reader has taken everything
    finally:
        reader.close()
    assert lines[0].startswith(b"seq,ch1,ch2,ch3*")
    assert record.read_bytes() == b"".join(line.rpartition(b"*")[0] + b"\n" for line in lines[1:])
    assert not link.exists()
    assert proc.stderr is not None
    log = proc.stderr.read().decode()
    assert "/dev/pts/" in log and str(link) in log


def test_control_fifo(tmp_path: Path, run_sim: Callable[..., subprocess.Popen[bytes]]) -> None:
    link, ctl = tmp_path / "sim0", tmp_path / "sim0.ctl"
    proc = run_sim("--link", str(link), "--rate", "500", "--seq", "--control", str(ctl))
    wait_for(ctl.exists, 15, "the control FIFO")
    reader = LinkReader(link)

    def send(command: str) -> None:
        with open(ctl, "w") as f:
            f.write(command + "\n")

    try:
        reader.read_lines(5)
        send("garbage 20")
        reader.read_until(lambda d: any(b >= 0x80 for b in d), 10)
        send("nul")
        reader.read_until(lambda d: b"\0" in d, 10)
        send("unplug")
        wait_for(lambda: not os.path.lexists(link), 10, "unplug")
        reader.read_for(1.0)
        assert reader.hangup
        send("replug")
        wait_for(link.exists, 10, "replug")
        second = LinkReader(link)
        try:
            assert second.read_lines(3)
        finally:
            second.close()
        send("stop")
        assert proc.wait(15) == 0
    finally:
        reader.close()
    assert not ctl.exists() and not os.path.lexists(link)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly(tmp_path: Path, run_sim: Callable[..., subprocess.Popen[bytes]],
                              sig: signal.Signals) -> None:
    link = tmp_path / "sim0"
    proc = run_sim("--link", str(link), "--rate", "0")  # nobody reads: the writer is blocked on a full pty
    wait_for(link.exists, 15, "the link")
    proc.send_signal(sig)
    assert proc.wait(15) == 0
    assert not os.path.lexists(link)


def test_periodic_faults(tmp_path: Path, run_sim: Callable[..., subprocess.Popen[bytes]]) -> None:
    link = tmp_path / "sim0"
    run_sim("--link", str(link), "--rate", "200", "--faults", "garbage,nul", "--fault-every", "0.2")
    wait_for(link.exists, 15, "the link")
    reader = LinkReader(link)
    try:
        reader.read_until(lambda d: any(b >= 0x80 for b in d) and b"\0" in d, 10)
    finally:
        reader.close()
