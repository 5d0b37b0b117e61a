"""The systemd notifier, against a real NOTIFY_SOCKET datagram socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.notify import Notifier, under_systemd


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket standing in for systemd's."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield path, sock
    sock.close()


def test_messages_reach_the_socket_given_in_the_mapping(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "3000000"})
    assert notifier.watchdog_interval == 3.0
    notifier.ready()
    notifier.status("reading 4 ch")
    notifier.watchdog()
    notifier.stopping()
    notifier.close()
    notifier.ready()  # dropped: closed
    got = [sock.recv(256).decode() for _ in range(4)]
    assert got == ["READY=1", "STATUS=reading 4 ch", "WATCHDOG=1", "STOPPING=1"]


def test_silent_outside_systemd_and_with_a_dead_socket(tmp_path: Path) -> None:
    for notifier in (Notifier.from_environ({}), Notifier.disabled(),
                     Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})):
        notifier.ready()
        notifier.watchdog()
        notifier.close()
    assert Notifier.from_environ({"WATCHDOG_USEC": "junk"}).watchdog_interval is None


def test_under_systemd() -> None:
    assert under_systemd({"INVOCATION_ID": "x"}) and under_systemd({"NOTIFY_SOCKET": "/run/n"})
    assert not under_systemd({})
