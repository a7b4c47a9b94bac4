"""``WorkerSink``: chunks of a download run through workers as they arrive.

A :class:`~peerpool.bitcoin.download.BlockSink` for ``download_blocks`` (or
called from ``Handlers.on_block_chunk`` / ``on_block``): each chunk of a large
block, and each small block whole, becomes a task for an
:class:`~peerpool.index.executors.OrderedRunner`. ``on_chunk`` returns only
once the runner has room (at most K tasks in flight): the handler awaits it,
so the client stops reading its socket and TCP holds the peer back; memory
stays at K chunks however fast the peer sends. Results go to ``on_result``
in the order the chunks arrived, which is block order within each block.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from peerpool.bitcoin.blocks import Chunk
from peerpool.bitcoin.received import Block
from peerpool.index.executors import OrderedRunner
from peerpool.index.work import ChunkResult, ChunkTask


class WorkerSink:
    def __init__(self, runner: OrderedRunner, on_result: Callable[[ChunkResult], Any]) -> None:
        self.runner = runner
        self.on_result = on_result
        self._lock = asyncio.Lock()  # the runner is driven from one thread at a time
        self.max_seen_in_flight = 0

    async def _put(self, task: ChunkTask) -> None:
        async with self._lock:
            ready = await asyncio.to_thread(self.runner.put, task)
            self.max_seen_in_flight = max(self.max_seen_in_flight, len(self.runner))
        for result in ready:
            await self._deliver(result)

    async def _deliver(self, result: ChunkResult) -> None:
        out = self.on_result(result)
        if inspect.isawaitable(out):
            await out

    async def on_chunk(self, chunk: Chunk, client: Any = None) -> None:
        task = ChunkTask(
            -1, chunk.block_hash, chunk.chunk_num, chunk.num_chunks,
            data=bytes(chunk.data), offsets=chunk.tx_offsets,
        )  # fmt: skip
        await self._put(task)

    async def on_block(self, block: Block, client: Any = None) -> None:
        if block.raw is None:  # LARGE: its chunks came through on_chunk
            return
        first = int(block.tx_offsets[0])
        task = ChunkTask(-1, block.hash, 0, 1, data=block.raw[first:], offsets=block.tx_offsets)
        await self._put(task)

    async def on_abort(self, block_hash: bytes) -> None:
        """Chunks of an aborted block already given to workers still come
        out; the block is downloaded again and its chunks come again."""

    async def drain(self) -> None:
        """Wait for every task in flight and deliver its result."""
        async with self._lock:
            results = await asyncio.to_thread(lambda: list(self.runner.drain()))
        for result in results:
            await self._deliver(result)
