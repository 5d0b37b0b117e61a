"""Issue #10: a reader waiting for its device keeps its systemd watchdog fed and says that it waits."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from tests.reader.conftest import reader_status, sessions, wait_for


class NotifySocket:
    """A NOTIFY_SOCKET stand-in: collects what the service sends to systemd."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.got: list[str] = []

    def until(self, done: Callable[[list[str]], bool], timeout: float) -> list[str]:
        """Receive until ``done(messages so far)``; AssertionError with what came after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not done(self.got):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"not seen after {timeout} s; got {self.got[-10:]}")
            self.sock.settimeout(left)
            try:
                self.got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.got

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def test_waiting_for_the_device_feeds_the_watchdog_then_records(sim_factory, start_reader, tmp_path):
    notify = NotifySocket(str(tmp_path / "notify.sock"))
    try:
        link = tmp_path / "monitor"
        data = tmp_path / "data"
        rp = start_reader("--port", link, "--data-dir", data, "--local", "--seq",
                          env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "3000000"}, wait=False)
        # Longer than a watchdog interval of waiting: WATCHDOG=1 keeps coming, the status says why.
        got = notify.until(lambda g: g.count("WATCHDOG=1") >= 4, 20)
        assert got[0] == "READY=1" and rp.proc.poll() is None
        assert f"STATUS=waiting for device {link}" in got
        assert "recording" not in rp.log
        sim = sim_factory(link=link, channels=2, rate=500, seq=True)
        rp.wait_log(r"recording .* session")
        session = wait_for(lambda: sessions(data, "monitor"), 10, "a session")[0]
        n = len(got)
        notify.until(lambda g: any(m == "WATCHDOG=1" for m in g[n:])
                     and any(m.startswith(f"STATUS=recording {session.name} ") for m in g[n:]), 10)
        assert sim.wait_sent(200, 10)
        wait_for(lambda: reader_status(data, "monitor").get("lines", 0) > 0, 10, "lines recorded")
        assert rp.terminate() == 0
        notify.until(lambda g: "STOPPING=1" in g, 10)
    finally:
        notify.close()
