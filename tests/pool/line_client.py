"""A tiny real client and server for pool tests and benches: a line protocol with a handshake.

The client dials (``peerpool.net.dial``), sends ``HELLO\\n`` and waits for the
server's ``HELLO\\n`` before ``connect()`` returns; after that every line is
echoed. A *mute* server accepts TCP but never answers the handshake: the
shape of a directory that is up at the TCP level but hung. The pool knows
nothing of any of this; it only sees the PoolClient contract.
"""

from __future__ import annotations

import asyncio
import contextlib

from peerpool.errors import DialError
from peerpool.net import Address, ProxyConfig, dial

HELLO = b"HELLO\n"
MAX_LINE = 4096


class LineClient:
    """Implements the PoolClient contract (connect, close, wait_closed)."""

    def __init__(self, address: Address, proxy: ProxyConfig | None = None) -> None:
        self.address = address
        self.proxy = proxy
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._lines: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        self._ended = asyncio.Event()

    async def connect(self) -> None:
        reader, writer = await dial(self.address, proxy=self.proxy, limit=MAX_LINE)
        self._writer = writer
        try:
            writer.write(HELLO)
            await writer.drain()
            answer = await reader.readline()
        except BaseException:
            writer.close()  # cancelled by the pool's timeout, or the server hung up
            raise
        if answer != HELLO:
            writer.close()
            raise DialError(f"{self.address}: bad handshake answer {answer[:40]!r}")
        self._reader_task = asyncio.create_task(self._read_lines(reader))

    async def request(self, text: str) -> str:
        assert self._writer is not None, "not connected"
        self._writer.write(text.encode() + b"\n")
        await self._writer.drain()
        return (await self._lines.get()).decode().rstrip("\n")

    async def _read_lines(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                await self._lines.put(line)
        except (ConnectionError, ValueError):
            pass  # reset by the peer, or a line over MAX_LINE: the connection is over
        finally:
            self._ended.set()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        self._ended.set()

    async def wait_closed(self) -> None:
        await self._ended.wait()


class LineServer:
    """A line server on 127.0.0.1 that can be killed and brought back on the same port."""

    def __init__(self, *, mute: bool = False) -> None:
        self.mute = mute
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.accepted = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    async def start(self) -> LineServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def kill(self) -> None:
        """Stop listening and reset every connection, as a crashed server would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            if await reader.readline() != HELLO:
                return
            if self.mute:
                while await reader.read(MAX_LINE):  # hold the connection, never answer
                    pass
                return
            writer.write(HELLO)
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
