"""Block download spread over a manager's connections, with re-requests.

Every connected client gets a worker that takes the next wanted hash, fetches
it with ``get_block`` (one block in flight per connection, so memory stays
bounded by one block under the large-message limit, or one chunk, per
connection) and hands it to a :class:`BlockSink`. When a connection drops or
does not answer in time, its block goes back to the front of the queue for
another connection (or for this one, once the manager has reconnected it),
and a sink that already received some of its chunks is told to discard them.
Workers start for connections as they come up, so a download survives the
node restarting under it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from peerpool.bitcoin.blocks import Chunk, hash_hex
from peerpool.bitcoin.client import BitcoinClient
from peerpool.bitcoin.manager import ClientManager
from peerpool.bitcoin.received import Block
from peerpool.errors import (
    BitcoinError,
    BlockNotFoundError,
    PeerDisconnectedError,
    PeerTimeoutError,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 10


class BlockSink(Protocol):
    """Where downloaded blocks go. For a LARGE block ``on_chunk`` comes once
    per chunk, in order, then ``on_block``; ``on_abort`` means the chunks
    received so far for that block are to be thrown away (it will come again)."""

    async def on_chunk(self, chunk: Chunk, client: BitcoinClient) -> None: ...

    async def on_block(self, block: Block, client: BitcoinClient) -> None: ...

    async def on_abort(self, block_hash: bytes) -> None: ...


class DownloadError(BitcoinError):
    """A block could not be downloaded: every attempt failed, or the deadline passed."""


@dataclass
class DownloadReport:
    blocks: int = 0
    bytes: int = 0
    rerequests: int = 0
    by_client: Counter[str] = field(default_factory=Counter)


_RETRYABLE = (PeerDisconnectedError, PeerTimeoutError, BlockNotFoundError)


async def download_blocks(
    manager: ClientManager,
    hashes: Iterable[bytes],
    sink: BlockSink,
    *,
    request_timeout: float | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    deadline: float | None = None,
    progress: Callable[[Block], None] | None = None,
) -> DownloadReport:
    """Download every block of ``hashes`` (internal byte order) into ``sink``.

    Raises DownloadError when one block failed ``max_attempts`` times or
    ``deadline`` seconds passed with blocks still missing.
    """
    download = _Download(manager, hashes, sink, request_timeout, max_attempts, progress)
    return await download.run(deadline)


class _Download:
    def __init__(
        self,
        manager: ClientManager,
        hashes: Iterable[bytes],
        sink: BlockSink,
        request_timeout: float | None,
        max_attempts: int,
        progress: Callable[[Block], None] | None,
    ) -> None:
        self.manager = manager
        self.queue: deque[bytes] = deque(dict.fromkeys(bytes(h) for h in hashes))
        self.sink = sink
        self.request_timeout = request_timeout
        self.max_attempts = max_attempts
        self.progress = progress
        self.attempts: Counter[bytes] = Counter()
        self.report = DownloadReport()
        self.workers: dict[str, asyncio.Task[None]] = {}

    async def run(self, deadline: float | None) -> DownloadReport:
        loop = asyncio.get_running_loop()
        end = None if deadline is None else loop.time() + deadline
        try:
            while self.queue or self.workers:
                generation = self.manager.generation
                for client in self.manager.available():
                    if self.queue and client.id not in self.workers:
                        self.workers[client.id] = asyncio.create_task(self._work(client))
                remaining = None if end is None else end - loop.time()
                if remaining is not None and remaining <= 0:
                    raise DownloadError(
                        f"{len(self.queue) + len(self.workers)} blocks still missing at the deadline"
                    )
                await self._wait_for_change(generation, remaining)
        finally:
            for task in self.workers.values():
                task.cancel()
            if self.workers:
                await asyncio.wait(self.workers.values())
        return self.report

    async def _wait_for_change(self, generation: int, timeout: float | None) -> None:
        """Until a worker ends (re-raising its failure) or a connection comes or goes."""
        changed = asyncio.ensure_future(self.manager.peers_changed(generation))
        try:
            done, _ = await asyncio.wait(
                {changed, *self.workers.values()}, timeout=timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            changed.cancel()
        for client_id, task in list(self.workers.items()):
            if task in done:
                del self.workers[client_id]
                task.result()  # a DownloadError or the sink's own error ends the download

    async def _work(self, client: BitcoinClient) -> None:
        while self.queue:
            block_hash = self.queue.popleft()
            got_chunks = False

            async def on_chunk(chunk: Chunk) -> None:
                nonlocal got_chunks
                got_chunks = True
                await self.sink.on_chunk(chunk, client)

            try:
                block = await client.get_block(
                    block_hash, on_chunk=on_chunk, timeout=self.request_timeout
                )
            except _RETRYABLE as exc:
                if got_chunks:
                    await self.sink.on_abort(block_hash)
                self._retry(block_hash, exc, client)
                if isinstance(exc, BlockNotFoundError):
                    continue  # the connection is fine; another peer may have it
                if isinstance(exc, PeerTimeoutError):
                    await client.close()  # stuck: the manager redials it
                return
            await self.sink.on_block(block, client)
            self.report.blocks += 1
            self.report.bytes += block.size
            self.report.by_client[client.id] += 1
            if self.progress is not None:
                self.progress(block)

    def _retry(self, block_hash: bytes, error: Exception, client: BitcoinClient) -> None:
        self.attempts[block_hash] += 1
        self.report.rerequests += 1
        if self.attempts[block_hash] >= self.max_attempts:
            raise DownloadError(
                f"block {hash_hex(block_hash)} failed {self.max_attempts} times; last: {error}"
            ) from error
        log.info("%s: block %s again later: %s", client, hash_hex(block_hash), error)
        if isinstance(error, BlockNotFoundError):
            self.queue.append(block_hash)  # after the others: give other peers a turn
        else:
            self.queue.appendleft(block_hash)
