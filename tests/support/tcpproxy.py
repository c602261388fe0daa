"""A loopback TCP proxy that can simulate a dependency outage and its recovery."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

_PORTS = {"postgresql": 5432, "redis": 6379}


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.up = True
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def connections(self) -> int:
        """Client connections being forwarded now."""
        return len(self._writers) // 2

    def cut(self) -> None:
        """The dependency goes down: drop every connection and refuse new ones."""
        self.up = False
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        self.up = True

    def freeze(self) -> None:
        """The dependency hangs (like a SIGSTOP): connections stay open, new ones are
        accepted, and nothing is forwarded either way until `thaw`."""
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while self.up and (data := await reader.read(65536)):
                await self._thawed.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        await self._thawed.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


async def proxy_for(url: str) -> tuple[TcpProxy, str]:
    """Start a proxy in front of the server of `url`; return it and the URL through it."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or _PORTS[parts.scheme.split("+")[0]]
    proxy = await TcpProxy(host, port).start()
    netloc = parts.netloc.rsplit("@", 1)
    where = f"127.0.0.1:{proxy.port}"
    new_netloc = f"{netloc[0]}@{where}" if len(netloc) == 2 else where
    return proxy, urlunsplit(parts._replace(netloc=new_netloc))
