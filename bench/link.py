"""A TCP proxy that paces client → server bytes to a fixed rate: a lab uplink for benchmarks.

Every connection through the proxy shares one token bucket, as uploads share one link. Responses
(small for uploads) are forwarded unpaced. Runs its own event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Self


class Link:
    """``with Link(target_port, mbit) as link:`` then connect to ``link.port`` instead of the target."""

    def __init__(self, target_port: int, mbit: float, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.rate = mbit * 1e6 / 8  # bytes per second
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
        """Join one client connection to a new server connection."""
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(
            self._pipe(reader, up_writer, paced=True),
            self._pipe(up_reader, writer, paced=False),
            return_exceptions=True,
        )

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, paced: bool) -> None:
        """Copy one direction until EOF."""
        try:
            while data := await src.read(65536):
                if paced:
                    await self._pace(len(data))
                dst.write(data)
                await dst.drain()
        finally:
            dst.close()
