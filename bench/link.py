"""A TCP proxy that paces client → server bytes to a fixed rate and adds round-trip time: a lab uplink.

Every connection through the proxy shares one token bucket, as uploads share one link. Responses
(small for uploads) are forwarded unpaced. ``rtt_ms`` delays each direction by half of it, and a new
connection by one more round trip (its TCP handshake). Runs its own event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Self


class Link:
    """``with Link(target_port, mbit) as link:`` then connect to ``link.port`` instead of the target."""

    def __init__(self, target_port: int, mbit: float, rtt_ms: float = 0.0, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.rate = mbit * 1e6 / 8  # bytes per second
        self.delay = rtt_ms / 2000  # seconds, one way
        self.port = 0
        self._next = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="link", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("link proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        """Cancel the connections still open (kept-alive by the clients) and wait for them."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        """Serve until stopped."""
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _pace(self, n: int) -> None:
        """Wait for this chunk's slot on the shared link."""
        now = time.monotonic()
        self._next = max(self._next, now) + n / self.rate
        if self._next - now > 0.002:
            await asyncio.sleep(self._next - now)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Join one client connection to a new server connection (after a handshake's round trip)."""
        await asyncio.sleep(2 * self.delay)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(
            self._pipe(reader, up_writer, paced=True),
            self._pipe(up_reader, writer, paced=False),
            return_exceptions=True,
        )

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, paced: bool) -> None:
        """Copy one direction until EOF, each chunk delivered ``delay`` after it left (in order)."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            try:
                while (item := await queue.get()) is not None:
                    if (wait := item[0] - time.monotonic()) > 0:
                        await asyncio.sleep(wait)
                    dst.write(item[1])
                    await dst.drain()
            finally:
                dst.close()

        delivery = asyncio.create_task(deliver())
        try:
            while data := await src.read(65536):
                if paced:
                    await self._pace(len(data))
                queue.put_nowait((time.monotonic() + self.delay, data))
        finally:
            queue.put_nowait(None)
            await delivery


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.link TARGET_PORT MBIT RTT_MS``: serve in its own process, print the port, stop on EOF."""
    import sys

    port, mbit, rtt = (argv if argv is not None else sys.argv[1:])[:3]
    with Link(int(port), float(mbit), float(rtt)) as link:
        print(link.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
