"""Shared helpers for the JoinMarket tests: fixed identities so failures reproduce."""

from __future__ import annotations

import asyncio
import contextlib

from peerpool.joinmarket.identity import NickIdentity


def identity(n: int) -> NickIdentity:
    """A deterministic identity; ``n`` in 1..255."""
    return NickIdentity(bytes([n]) * 32)


class FakeWriter:
    """Stands in for an asyncio transport in sans-I/O server tests."""

    def __init__(self, buffer_size: int = 0) -> None:
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.buffer_size = buffer_size
        self.writes = 0

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.data += data
        self.writes += 1

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return self.buffer_size

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


class SocketPeer:
    """A client protocol over a real socket, for server tests before any client class."""

    def __init__(self, n: int, network: str = "regtest", **kw: object) -> None:
        from peerpool.joinmarket.protocol import DirectoryClientProtocol, NickAuthMode

        kw.setdefault("nick_auth", NickAuthMode.OFF)
        self.proto = DirectoryClientProtocol(identity(n), network, **kw)  # type: ignore[arg-type]
        self.events: list[object] = []
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), 10
        )

    async def flush(self) -> None:
        self.writer.write(self.proto.data_to_send())
        await asyncio.wait_for(self.writer.drain(), 10)

    async def connect(self, port: int) -> SocketPeer:
        from peerpool.joinmarket.protocol import State

        await self.open(port)
        self.proto.start()
        await self.flush()
        await self.until(lambda: self.proto.state is State.READY)
        return self

    async def until(self, done, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        """Read and process until ``done()`` holds; EOF raises ConnectionError."""

        async def loop() -> None:
            while not done():
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("directory closed the connection")
                self.proto.receive_data(data)
                self.events += self.proto.events_received()
                await self.flush()

        await asyncio.wait_for(loop(), timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 5)
