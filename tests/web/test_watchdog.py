"""The dashboard's watchdog self-check: only a request the server really served counts."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from tests.support import free_port
from web.watchdog import probe_address, probe_host, self_check


def check(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> bool:
    return asyncio.run(self_check("127.0.0.1", port, host, timeout))


def test_a_serving_server_passes_also_behind_a_login(web_server: Any) -> None:
    assert check(web_server().port)
    assert check(web_server(SENSOR_WEB_LOGIN_REQUIRED="1").port)  # a redirect to the login page is an answer


def test_a_listener_that_never_answers_fails() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert not check(silent.getsockname()[1], timeout=0.5)


def test_nothing_listening_fails() -> None:
    assert not check(free_port())


def test_where_the_server_reaches_itself() -> None:
    assert [probe_address(b) for b in ("0.0.0.0", "", "::", "[::1]", "10.0.0.5")] == [
        "127.0.0.1", "127.0.0.1", "::1", "::1", "10.0.0.5"]
    assert probe_host(("box.lab", "10.0.0.5")) == "box.lab"
    assert probe_host((".lab",)) == "watchdog.lab" and probe_host(("*",)) == "localhost"
