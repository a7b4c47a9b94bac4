"""The HIGH_LEVEL bookkeeping of a client: who waits for which answer.

A ``BitcoinClient`` in ``Mode.HIGH_LEVEL`` hands every message to
:class:`PendingRequests` after its handlers have seen it. Here the answers are
matched to the requests waiting for them (``headers`` to the one outstanding
``getheaders``; a block, its chunks or a ``notfound`` to ``get_block`` by
hash; a ``reject`` to ``broadcast_transaction`` by txid), and announcements go
into two bounded queues, one for blocks and one for transactions, so that a
tip follower and a mempool watcher can share a connection (and the combined
``inv_queue`` of old, once something asked for it). When the connection ends
every waiter fails with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.announcements import BLOCK_TYPES, TX_TYPES
from peerpool.bitcoin.blocks import Chunk
from peerpool.bitcoin.headers import hash_headers
from peerpool.bitcoin.received import Block
from peerpool.errors import BlockNotFoundError, PeerpoolError

log = logging.getLogger(__name__)

ChunkCallback = Callable[[Chunk], Awaitable[None]]


@dataclass
class BlockRequest:
    future: asyncio.Future[Block]
    on_chunk: ChunkCallback | None = None
    chunks_seen: int = 0
    requested: bool = False  # getdata sent


@dataclass
class TxBroadcast:
    txid: bytes
    future: asyncio.Future[msgs.Reject] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class PendingRequests:
    def __init__(self, inv_queue_size: int) -> None:
        # Bounded: when the application does not drain them, the oldest
        # announcements are dropped (and counted) rather than memory growing.
        self.queue_size = inv_queue_size
        self.block_queue: asyncio.Queue[msgs.InvVector] = asyncio.Queue(inv_queue_size)
        self.tx_queue: asyncio.Queue[msgs.InvVector] = asyncio.Queue(inv_queue_size)
        self._inv_queue: asyncio.Queue[msgs.InvVector] | None = None
        self.inv_dropped = 0
        #: Called with every announcement as well (the manager's queues, with the peer).
        self.on_announce: Callable[[msgs.InvVector], None] | None = None
        self.headers_waiter: asyncio.Future[msgs.Headers] | None = None
        self.blocks: dict[bytes, BlockRequest] = {}
        self.broadcasts: list[TxBroadcast] = []
        self.watched: dict[bytes, asyncio.Future[None]] = {}  # hashes awaited in an inv

    @property
    def inv_queue(self) -> asyncio.Queue[msgs.InvVector]:
        """Block and transaction announcements together, from the first access
        on (made on demand: a queue nobody reads would only drop)."""
        if self._inv_queue is None:
            self._inv_queue = asyncio.Queue(self.queue_size)
        return self._inv_queue

    # --- registering ----------------------------------------------------------

    def expect_headers(self) -> asyncio.Future[msgs.Headers]:
        self.headers_waiter = asyncio.get_running_loop().create_future()
        return self.headers_waiter

    def expect_block(self, block_hash: bytes, on_chunk: ChunkCallback | None) -> BlockRequest:
        existing = self.blocks.get(block_hash)
        if existing is not None and not existing.future.done():
            return existing  # a second caller for the same block shares the request
        request = BlockRequest(asyncio.get_running_loop().create_future(), on_chunk)
        self.blocks[block_hash] = request
        return request

    def expect_reject(self, txid: bytes) -> TxBroadcast:
        broadcast = TxBroadcast(txid)
        self.broadcasts.append(broadcast)
        return broadcast

    def watch(self, item_hash: bytes) -> asyncio.Future[None]:
        """A future resolved when the peer announces ``item_hash`` (without
        taking the announcement from the announcement queues)."""
        future = self.watched.get(item_hash)
        if future is None or future.done():
            future = self.watched[item_hash] = asyncio.get_running_loop().create_future()
        return future

    def unwatch(self, item_hash: bytes) -> None:
        future = self.watched.pop(item_hash, None)
        if future is not None and not future.done():
            future.cancel()

    def forget_block(self, block_hash: bytes, request: BlockRequest) -> None:
        if self.blocks.get(block_hash) is request:
            del self.blocks[block_hash]

    def forget_broadcast(self, broadcast: TxBroadcast) -> None:
        if broadcast in self.broadcasts:
            self.broadcasts.remove(broadcast)

    # --- answers ----------------------------------------------------------------

    async def on_chunk(self, chunk: Chunk) -> None:
        request = self.blocks.get(chunk.block_hash)
        if request is None or request.future.done():
            return
        request.chunks_seen += 1
        if request.on_chunk is not None:
            await request.on_chunk(chunk)

    def on_block(self, block: Block) -> None:
        request = self.blocks.pop(block.hash, None)
        if request is not None and not request.future.done():
            request.future.set_result(block)

    def on_message(self, message: msgs.Message) -> None:
        if isinstance(message, msgs.Headers):
            self._on_headers(message)
        elif isinstance(message, msgs.Inv):
            for item in message.items:
                if item.kind in BLOCK_TYPES:
                    self._announce(item, self.block_queue)
                elif item.kind in TX_TYPES:
                    self._announce(item, self.tx_queue)
        elif isinstance(message, msgs.NotFound):
            for item in message.items:
                request = self.blocks.pop(item.hash, None)
                if request is not None and not request.future.done():
                    request.future.set_exception(
                        BlockNotFoundError(f"the peer does not have block {item.hash[::-1].hex()}")
                    )
        elif isinstance(message, msgs.Reject) and message.message == "tx":
            self._on_tx_reject(message)

    def _on_headers(self, message: msgs.Headers) -> None:
        waiter, self.headers_waiter = self.headers_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
            return
        # not asked for: a BIP130 announcement of new blocks
        for block_hash in hash_headers(message.headers):
            item = msgs.InvVector(msgs.InvType.BLOCK, block_hash.tobytes())
            self._announce(item, self.block_queue)

    def _on_tx_reject(self, reject: msgs.Reject) -> None:
        for broadcast in self.broadcasts:
            # a transaction that cannot be parsed has no txid: the reject carries none
            if not broadcast.future.done() and reject.data in (broadcast.txid, b""):
                broadcast.future.set_result(reject)
                return

    def _announce(self, item: msgs.InvVector, queue: asyncio.Queue[msgs.InvVector]) -> None:
        watcher = self.watched.get(item.hash)
        if watcher is not None and not watcher.done():
            watcher.set_result(None)
        self._put(queue, item)
        if self._inv_queue is not None:
            self._put(self._inv_queue, item)
        if self.on_announce is not None:
            self.on_announce(item)

    def _put(self, queue: asyncio.Queue[msgs.InvVector], item: msgs.InvVector) -> None:
        if queue.full():
            queue.get_nowait()
            self.inv_dropped += 1
            if self.inv_dropped in (1, 1000) or self.inv_dropped % 100_000 == 0:
                log.warning(
                    "announcement queue full: %d announcements dropped so far", self.inv_dropped
                )
        queue.put_nowait(item)

    # --- the end --------------------------------------------------------------------

    def fail_all(self, error: PeerpoolError) -> None:
        """The connection ended: every waiter gets ``error``."""
        futures: list[asyncio.Future[object]] = []
        if self.headers_waiter is not None:
            futures.append(self.headers_waiter)  # type: ignore[arg-type]
        futures.extend(r.future for r in self.blocks.values())  # type: ignore[misc]
        futures.extend(b.future for b in self.broadcasts)  # type: ignore[misc]
        futures.extend(self.watched.values())  # type: ignore[arg-type]
        for future in futures:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved here: a waiter may have gone
        self.headers_waiter = None
        self.blocks.clear()
        self.broadcasts.clear()
        self.watched.clear()
