"""A tiny asyncio Bitcoin peer that misbehaves on cue, for the bad-input tests.

Only the misbehaving-peer cases use it; everything else runs against the real
node. It listens on 127.0.0.1 (port chosen by the OS) and runs ``script``
for each connection with a :class:`FakeSide` that can do the handshake, send
codecs, raw bytes or nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.messages.framing import MessageDecoder, encode_message
from peerpool.bitcoin.networks import Network, get_network

NETWORK = get_network("bsv-regtest")


class FakeSide:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, network: Network
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.network = network
        self.decoder = MessageDecoder(network.magic, 1 << 24, 1 << 24)
        self.received: list[msgs.Message] = []

    async def read_message(self) -> msgs.Message:
        while True:
            if self.received:
                return self.received.pop(0)
            data = await self.reader.read(1 << 16)
            if not data:
                raise ConnectionError("the client closed the connection")
            for event in self.decoder.feed(data):
                self.received.append(msgs.decode_message(event.command, event.payload))

    async def expect(self, kind: type[msgs.Message]) -> msgs.Message:
        while not isinstance(message := await self.read_message(), kind):
            pass
        return message

    def encode(self, message: msgs.Message) -> bytes:
        return encode_message(self.network.magic, message.COMMAND, message.encode())

    async def send(self, message: msgs.Message) -> None:
        await self.send_raw(self.encode(message))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    @staticmethod
    def version(start_height: int = 0) -> msgs.Version:
        return msgs.Version(
            version=msgs.PROTOCOL_VERSION,
            services=msgs.NODE_NETWORK,
            timestamp=1_700_000_000,
            receiver=msgs.NetworkAddress.from_host("127.0.0.1", 0),
            sender=msgs.NetworkAddress.from_host("127.0.0.1", 0),
            nonce=7,
            user_agent="/fake-peer/",
            start_height=start_height,
            relay=True,
        )

    async def handshake(self, start_height: int = 0) -> None:
        await self.expect(msgs.Version)
        await self.send(self.version(start_height))
        await self.send(msgs.VerAck())
        await self.expect(msgs.VerAck)

    async def handshake_then(self, data: bytes) -> None:
        """The handshake with ``data`` in the same write as our verack (so
        the client reads them together), then silence until closed."""
        await self.expect(msgs.Version)
        await self.send_raw(self.encode(self.version()) + self.encode(msgs.VerAck()) + data)
        await self.silent()

    async def drip(self, data: bytes, interval: float = 1.0) -> None:
        """Send ``data`` one byte every ``interval`` seconds."""
        for i in range(len(data)):
            await self.send_raw(data[i : i + 1])
            await asyncio.sleep(interval)

    async def silent(self) -> None:
        """Read and throw away whatever comes, answer nothing, until closed."""
        while await self.reader.read(1 << 16):
            pass


Script = Callable[[FakeSide], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_peer(script: Script, network: Network = NETWORK) -> AsyncIterator[str]:
    """Serve ``script`` on a free port; yields ``"127.0.0.1:port"``."""
    tasks: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.add(writer)
        try:
            with contextlib.suppress(ConnectionError):
                await script(FakeSide(reader, writer, network))
        finally:
            writer.close()
            writers.discard(writer)
            tasks.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        # closing a connection ends its script's reads; cancelling the task
        # instead would make asyncio log the cancellation as an error
        for writer in list(writers):
            writer.close()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        await server.wait_closed()
