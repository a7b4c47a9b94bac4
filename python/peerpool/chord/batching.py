"""Puts to one peer coalesced while a Put to it is in flight.

Concurrent sets (and the replicas their owners push) would each cost a
request per owner; with a batcher, the Puts that queue up for a peer while
one is on the wire leave together as the next request, so a burst of writes
costs one round trip per peer per flush rather than one per write. The
answer to the merged Put (Ok, or Want with refused indices) is split back to
each caller by its offset. Queues are bounded: a caller past ``max_queued``
entries for a peer waits for the flush (backpressure), never grows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from peerpool.chord import messages as m
from peerpool.chord.core import Call, pages
from peerpool.chord.storage import Entry
from peerpool.chord.types import NodeRef

Sender = Callable[[Call], Awaitable[m.Message | None]]


@dataclass
class _Queue:
    node: NodeRef
    waiting: list[tuple[list[Entry], asyncio.Future[m.Message | None]]] = field(
        default_factory=list
    )
    queued: int = 0
    flushing: bool = False
    room: asyncio.Event = field(default_factory=asyncio.Event)


class PutBatcher:
    def __init__(self, send: Sender, max_queued: int = 4 * m.MAX_ENTRIES) -> None:
        self._send = send
        self.max_queued = max_queued
        self._queues: dict[tuple[str, bool], _Queue] = {}
        self._flushers: set[asyncio.Task[None]] = set()
        self.flushes = 0

    async def put(self, node: NodeRef, msg: m.Put) -> m.Message | None:
        if msg.skip:
            return await self._send(Call(node, msg))  # routed with hints: not merged
        key = (node.peer_id, msg.replica)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(node)
        while queue.queued >= self.max_queued:
            queue.room.clear()
            await queue.room.wait()
        future: asyncio.Future[m.Message | None] = asyncio.get_running_loop().create_future()
        queue.waiting.append((list(msg.entries), future))
        queue.queued += len(msg.entries)
        if not queue.flushing:
            queue.flushing = True
            task = asyncio.ensure_future(self._flush(key, queue, msg.replica))
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    def cancel(self) -> list[asyncio.Task[None]]:
        """Stop every flush (the node is stopping); their callers see the cancellation."""
        for task in self._flushers:
            task.cancel()
        return list(self._flushers)

    async def _flush(self, key: tuple[str, bool], queue: _Queue, replica: bool) -> None:
        try:
            while queue.waiting:
                batch: list[tuple[list[Entry], asyncio.Future[m.Message | None]]] = []
                entries: list[Entry] = []
                while queue.waiting and len(entries) + len(queue.waiting[0][0]) <= m.MAX_ENTRIES:
                    part, future = queue.waiting.pop(0)
                    batch.append((part, future))
                    entries.extend(part)
                if not batch:  # one caller's Put alone is larger than a page: send it as is
                    batch.append(queue.waiting.pop(0))
                    entries = batch[0][0]
                queue.queued -= len(entries)
                queue.room.set()
                # A page may still be too many bytes for one message: pages() cuts it.
                answers = []
                for page in pages(entries):
                    self.flushes += 1
                    answers.append(
                        (len(page), await self._send(Call(queue.node, m.Put(tuple(page), replica))))
                    )
                _split(batch, answers)
        finally:
            queue.flushing = False
            if not queue.waiting:
                self._queues.pop(key, None)


def _split(
    batch: list[tuple[list[Entry], asyncio.Future[m.Message | None]]],
    answers: list[tuple[int, m.Message | None]],
) -> None:
    """Give each caller the answer for its own entries of the merged Put."""
    refused: set[int] = set()
    failed = False
    base = 0
    for size, resp in answers:
        if resp is None or not isinstance(resp, (m.Ok, m.Want)):
            failed = failed or resp is None
            refused.update(range(base, base + size))
        elif isinstance(resp, m.Want):
            refused.update(base + i for i in resp.indices if 0 <= i < size)
        base += size
    offset = 0
    for part, future in batch:
        mine = tuple(i - offset for i in range(offset, offset + len(part)) if i in refused)
        offset += len(part)
        if future.done():
            continue
        if failed and len(mine) == len(part):
            future.set_result(None)
        elif mine:
            future.set_result(m.Want(mine))
        else:
            future.set_result(m.Ok())
