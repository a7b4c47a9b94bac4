"""A Handlers subclass that records what it was called with, for the client tests."""

from __future__ import annotations

import asyncio
from typing import Any

from peerpool.bitcoin import BitcoinClient, Handlers
from peerpool.bitcoin.blocks import Chunk
from peerpool.bitcoin.messages.wire import Message
from peerpool.bitcoin.received import Block

# Every await in a test is bounded; a slow CI machine gets plenty.
WAIT = 60.0


class RecordingHandlers(Handlers):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, str]] = []  # (command, message, client id)
        self.changed = asyncio.Event()

    def _record(self, command: str, message: Any, client: BitcoinClient) -> None:
        self.calls.append((command, message, client.id))
        self.changed.set()

    async def dispatch(self, message: Message, client: BitcoinClient) -> None:
        self._record(getattr(message, "command", message.COMMAND), message, client)
        await super().dispatch(message, client)

    async def on_block(self, block: Block, client: BitcoinClient) -> None:
        self._record("block", block, client)

    async def on_block_chunk(self, chunk: Chunk, client: BitcoinClient) -> None:
        self._record("chunk", chunk, client)

    def commands(self) -> list[str]:
        return [command for command, _, _ in self.calls]

    def messages(self, command: str) -> list[Any]:
        return [message for c, message, _ in self.calls if c == command]

    async def wait_for(self, command: str, count: int = 1, timeout: float = WAIT) -> list[Any]:
        """Wait until ``count`` calls for ``command`` were recorded."""

        async def until() -> list[Any]:
            while len(found := self.messages(command)) < count:
                self.changed.clear()
                await self.changed.wait()
            return found

        return await asyncio.wait_for(until(), timeout)
