"""Puts to one peer coalesced while a Put to it is in flight, and concurrent
sets coalesced into one write (WriteCoalescer, at the end).

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
from peerpool.errors import PeerpoolError

Sender = Callable[[Call], Awaitable[m.Message | None]]


@dataclass
class _Queue:
    node: NodeRef
    waiting: list[tuple[m.Put, asyncio.Future[m.Message | None]]] = field(default_factory=list)
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
        queue.waiting.append((msg, future))
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
                batch: list[tuple[m.Put, asyncio.Future[m.Message | None]]] = []
                count = 0
                while queue.waiting and count + len(queue.waiting[0][0].entries) <= m.MAX_ENTRIES:
                    part = queue.waiting.pop(0)
                    batch.append(part)
                    count += len(part[0].entries)
                if not batch:  # one caller's Put alone is larger than a page: send it as is
                    batch.append(queue.waiting.pop(0))
                    count = len(batch[0][0].entries)
                queue.queued -= count
                queue.room.set()
                entries = [e for put, _ in batch for e in put.entries]
                # A page may still be too many bytes for one message: pages() cuts it.
                chosen = list(pages(entries))
                # A Put that leaves alone and whole goes as the same object: the
                # replicas of one write, queued for each successor, then share
                # one encoding (the driver keeps the last few).
                whole = batch[0][0] if len(batch) == 1 and len(chosen) == 1 else None
                answers = []
                for page in chosen:
                    self.flushes += 1
                    msg = whole if whole is not None else m.Put(tuple(page), replica)
                    answers.append((len(page), await self._send(Call(queue.node, msg))))
                _split([(len(put.entries), future) for put, future in batch], answers)
        finally:
            queue.flushing = False
            if not queue.waiting:
                self._queues.pop(key, None)


def _split(
    batch: list[tuple[int, asyncio.Future[m.Message | None]]],
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
    for size, future in batch:
        mine = tuple(i - offset for i in range(offset, offset + size) if i in refused)
        offset += size
        if future.done():
            continue
        if failed and len(mine) == size:
            future.set_result(None)
        elif mine:
            future.set_result(m.Want(mine))
        else:
            future.set_result(m.Ok())


class WriteCoalescer:
    """Concurrent ``set``s joined into one ``put_entries`` run.

    Each set alone costs an operation (routing decisions, a task per owner, a
    future per merged Put); sets that arrive while earlier ones are written
    wait and leave together, so a burst costs a few operations in all. Up to
    ``max_flushes`` runs are in flight at once (the next batch is encoded
    while the owners store the last one). A batch that fails is retried set by
    set, so each caller gets its own outcome, never a neighbour's error.
    """

    def __init__(
        self,
        run: Callable[[list[Entry]], Awaitable[None]],
        *,
        max_entries: int = 5 * m.MAX_ENTRIES,
        max_flushes: int = 2,
    ) -> None:
        self._run = run
        self.max_entries = max_entries
        self._pending: list[tuple[list[Entry], asyncio.Future[None]]] = []
        self._slots = asyncio.Semaphore(max_flushes)
        self._loop_task: asyncio.Task[None] | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self.flushes = 0

    async def write(self, entries: list[Entry]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entries, future))
        if self._loop_task is None:
            self._loop_task = asyncio.ensure_future(self._flush_all())
        await future

    def cancel(self) -> list[asyncio.Task[None]]:
        tasks = [*self._runs, *([self._loop_task] if self._loop_task else [])]
        for task in tasks:
            task.cancel()
        for _, future in self._pending:
            future.cancel()
        self._pending.clear()
        return tasks

    async def _flush_all(self) -> None:
        try:
            while self._pending:
                await self._slots.acquire()
                batch: list[tuple[list[Entry], asyncio.Future[None]]] = []
                size = 0
                while self._pending and (
                    not batch or size + len(self._pending[0][0]) <= self.max_entries
                ):
                    part = self._pending.pop(0)
                    batch.append(part)
                    size += len(part[0])
                task = asyncio.ensure_future(self._flush(batch))
                self._runs.add(task)
                task.add_done_callback(self._runs.discard)
                # Let the sets that arrive during this run gather for the next.
                await asyncio.sleep(0)
        finally:
            self._loop_task = None

    async def _flush(self, batch: list[tuple[list[Entry], asyncio.Future[None]]]) -> None:
        try:
            self.flushes += 1
            live = [(es, f) for es, f in batch if not f.done()]
            try:
                await self._run([e for es, _ in live for e in es])
            except PeerpoolError as exc:
                if len(live) == 1:
                    _settle(live[0][1], exc)
                    return
                for entries, future in live:
                    try:
                        await self._run(entries)
                    except PeerpoolError as one:
                        _settle(future, one)
                    else:
                        _settle(future, None)
                return
            for _, future in live:
                _settle(future, None)
        finally:
            self._slots.release()
            for _, future in batch:
                if not future.done():
                    future.cancel()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
