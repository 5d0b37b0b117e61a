"""The dashboard's systemd watchdog: WATCHDOG=1 only after the server has really served a request.

A timer alone would prove only that the event loop ticks. Instead, every half watchdog period a task on
the serving loop asks the server itself for `/api/status` over its own listening socket: Daphne accepts
and parses the request, the Django ASGI app runs its middleware and the view, which reads the hub. Only a
complete HTTP answer feeds the watchdog; a blocked loop, a stuck thread pool or a dead listener starve it
and systemd restarts the service. A failed check is logged once, and so is the recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from kernel.notify import Notifier

log = logging.getLogger(__name__)

PATH = "/api/status"
_tasks: set[asyncio.Task[None]] = set()


def probe_address(bind: str) -> str:
    """Where the server reaches itself: loopback when bound to every address."""
    if bind in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind == "::":
        return "::1"
    return bind.strip("[]")


def probe_host(allowed_hosts: Sequence[str]) -> str:
    """A Host header Django accepts (the first allowed host; a wildcard needs a name under it)."""
    for host in allowed_hosts:
        if host == "*":
            return "localhost"
        return f"watchdog{host}" if host.startswith(".") else host
    return "localhost"


async def self_check(address: str, port: int, host: str, timeout: float) -> bool:
    """True when the server answers a GET of the status API with a success or redirect within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port)
            try:
                writer.write(f"GET {PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                status_line = await reader.readline()
                await reader.read()  # the whole answer: the view ran to the end
            finally:
                writer.close()
    except (OSError, TimeoutError) as err:
        log.debug("watchdog self-check failed: %s", err)
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1][:1] in (b"2", b"3")


async def watchdog_loop(notifier: Notifier, address: str, port: int, host: str, period: float) -> None:
    """Feed the watchdog after each successful self-check, every `period` seconds, until cancelled."""
    healthy, ok = True, True
    while True:
        await asyncio.sleep(period if ok else period / 4)  # after a miss, try again soon: the budget is 2 periods
        ok = await self_check(address, port, host, timeout=period)
        if ok:
            notifier.watchdog()
            if not healthy:
                log.info("the server answers its watchdog self-check again")
        elif healthy:
            log.warning("the server did not answer its watchdog self-check (%s:%d%s)", address, port, PATH)
        healthy = ok


def start(notifier: Notifier, bind: str, port: int, allowed_hosts: Sequence[str]) -> None:
    """Schedule the self-check loop on the reactor's event loop (call before or while it runs)."""
    if not notifier.watchdog_interval:
        return
    from twisted.internet import reactor

    period = notifier.watchdog_interval / 2
    address, host = probe_address(bind), probe_host(allowed_hosts)

    def begin() -> None:
        task = asyncio.get_running_loop().create_task(
            watchdog_loop(notifier, address, port, host, period), name="sensor-web-watchdog")
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    reactor.callLater(0, begin)  # type: ignore[attr-defined]
