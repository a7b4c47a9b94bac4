"""The asyncio driver of the ring core over a mesh transport.

It answers requests with ``ChordCore.handle``, carries the steps of the ops
generators over ``transport.request``, and runs the periodic work
(stabilise, check the predecessor, fix fingers, repair and tombstone
collection, rebuild of lost positions, close idle hops).
Timeouts and tasks live only here. Background sends (replicas, relayed
broadcasts) are bounded: past ``max_background`` in flight they are dropped
and counted, and repair sends the copies later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Self, TypeVar

from peerpool.chord import messages as m
from peerpool.chord import ops, repair, wire
from peerpool.chord.batching import PutBatcher, WriteCoalescer
from peerpool.chord.core import Call, ChordCore
from peerpool.chord.storage import Entry
from peerpool.chord.transport import PROTOCOL, Disconnecting, HasEvents, ListsPeers, Transport
from peerpool.chord.types import NodeRef
from peerpool.errors import (
    ChordError,
    ChordLookupError,
    ChordMessageError,
    ChordStateError,
    ChordTimeoutError,
    PeerpoolError,
)

T = TypeVar("T")
#: Values up to 1 MiB: a key's five copies then fit the mesh node's 4 MiB
#: request limit in at most a few pages.
DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
#: Replica Puts whose encoding is kept for the other successors (a few pages' worth).
ENCODED_KEPT = 8


class Driver:
    def __init__(
        self,
        transport: Transport,
        *,
        replicas: int = 3,
        successors: int = 8,
        request_timeout: float = 2.0,
        stabilise_interval: float = 1.0,
        fix_fingers_every: int = 5,
        repair_every: int = 10,
        rebuild_every: int = 60,
        tombstone_ttl: float = 600.0,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        max_background: int = 256,
        idle_hop_timeout: float = 30.0,
        read_events: bool = True,
        id_choices: int = 1,
    ) -> None:
        """``read_events``: drain the transport's event queue (MeshNode's is
        bounded and stalls the swarm when full); turn it off when something
        else, such as the connection pools, reads the node's events.

        ``id_choices``: at ``join``, look up this many candidate ring ids and
        take the one in the widest arc, so that keys spread evenly (8 keeps
        every node within about 3x the mean share on a 10,000-node ring; see
        the README). 1, the default, keeps py2p's id, SHA-384 of the peer id;
        a node that took candidate ``i > 0`` has SHA-384 of ``"<peer id>#<i>"``."""
        self.transport = transport
        self._options: dict[str, Any] = dict(
            replicas=replicas,
            successors=successors,
            max_value_bytes=max_value_bytes,
            tombstone_ttl=tombstone_ttl,
            id_choices=id_choices,
        )
        self.request_timeout = request_timeout
        self.stabilise_interval = stabilise_interval
        self.fix_fingers_every = fix_fingers_every
        self.repair_every = repair_every
        self.rebuild_every = rebuild_every
        self.max_background = max_background
        self.idle_hop_timeout = idle_hop_timeout
        self.read_events = read_events
        self._last_used: dict[str, float] = {}
        self._encoded: dict[int, tuple[m.Message, bytes]] = {}
        self._core: ChordCore | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._maintenance: asyncio.Task[None] | None = None
        self._stopping = False
        self._batcher = PutBatcher(self._send)
        self._writes = WriteCoalescer(self._write)

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Take the transport's identity and addresses, and start answering."""
        me = NodeRef(self.transport.peer_id, tuple(self.transport.listen_addrs)[:8])
        self._core = ChordCore(me, **self._options)
        self._stopping = False
        self.transport.set_request_handler(PROTOCOL, self._on_request)
        self._maintenance = asyncio.create_task(self._maintain())
        if self.read_events and isinstance(self.transport, HasEvents):
            self._spawn(self._drain_events())

    async def stop(self) -> None:
        """Stop the maintenance tasks and answering; the transport stays up (stop it yourself)."""
        self._stopping = True
        tasks = [t for t in (self._maintenance, *self._tasks) if t is not None]
        tasks += self._batcher.cancel()
        tasks += self._writes.cancel()
        # Cancelled until done: on Python 3.11 asyncio.wait_for can swallow a
        # cancellation that lands as its inner call completes.
        while tasks:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=0.1)
            tasks = [t for t in tasks if not t.done()]
        self._maintenance = None
        self._tasks.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def core(self) -> ChordCore:
        """The sans-I/O ring core this node drives.

        Raises:
            peerpool.errors.ChordStateError: the node is not started.
        """
        if self._core is None:
            raise ChordStateError("the node is not started")
        return self._core

    @property
    def id(self) -> int:
        """This node's ring id (the SHA-384 of its transport peer id, as py2p derives it).

        Raises:
            peerpool.errors.ChordStateError: the node is not started.
        """
        return self.core.me.id

    @property
    def stats(self) -> dict[str, Any]:
        """Counters of the node: hops per lookup, the ring core's counters, and the
        messages the relay dropped, by cause.

        Raises:
            peerpool.errors.ChordStateError: the node is not started.
        """
        core = self.core
        return {
            "hops": dict(core.hops),
            **core.counters,
            **core.relay.dropped,
            "stored": len(core.store),
        }

    # --- driving the core ------------------------------------------------------------------

    async def _run(self, op: ops.Op[T], timeout: float, what: str) -> T:
        try:
            return await asyncio.wait_for(self._drive(op), timeout)
        except asyncio.TimeoutError:
            raise ChordTimeoutError(f"{what} did not complete within {timeout} s") from None

    async def _write(self, entries: list[Entry]) -> None:
        await self._run(ops.put_entries(self.core, entries), 30.0, "set")

    async def _drive(self, op: ops.Op[T]) -> T:
        try:
            step = next(op)
            while True:
                if isinstance(step, Call):
                    step = op.send(await self._send(step))
                elif isinstance(step, ops.Parallel):
                    step = op.send(
                        list(await asyncio.gather(*(self._send_merged(c) for c in step.calls)))
                    )
                else:
                    self._background(step.calls)
                    step = op.send(None)
        except StopIteration as stop:
            result: T = stop.value
            return result
        finally:
            op.close()

    async def _send_merged(self, call: Call) -> m.Message | None:
        """Puts to owners (not routed hop by hop) join the peer's next batch."""
        if isinstance(call.msg, m.Put):
            return await self._batcher.put(call.node, call.msg)
        return await self._send(call)

    async def _send(self, call: Call) -> m.Message | None:
        node = call.node
        self._last_used[node.peer_id] = time.monotonic()
        payload = self._encode(call.msg)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        for attempt in range(2):
            try:
                if not self.transport.is_connected(node.peer_id) and node.addrs:
                    await self.transport.dial(node.addrs, timeout=max(0.05, deadline - loop.time()))
                raw = await self.transport.request(
                    node.peer_id, PROTOCOL, payload, timeout=max(0.05, deadline - loop.time())
                )
                return wire.decode(raw)
            except ChordMessageError:
                self.core.counters["bad_response"] += 1
                return None
            except (PeerpoolError, OSError, asyncio.TimeoutError):
                # Once more within the same deadline: a stream opened on a
                # connection that was closing (two nodes dialing each other at
                # once keep one connection) fails without the peer being gone.
                if attempt or loop.time() >= deadline - 0.05:
                    return None
                self.core.counters["request_retried"] += 1
                await asyncio.sleep(0.01)
        return None

    def _encode(self, msg: m.Message) -> bytes:
        """A request's bytes. A replica Put goes to each of the next successors
        as one message object: the last few are kept and encoded once (the
        encoding is the largest part of what an owner spends on a write)."""
        if not isinstance(msg, m.Put) or not msg.replica:
            return wire.encode(msg)
        memo = self._encoded
        known = memo.get(id(msg))
        if known is not None and known[0] is msg:
            return known[1]
        data = wire.encode(msg)
        memo[id(msg)] = (msg, data)  # the message is held, so its id is not reused
        if len(memo) > ENCODED_KEPT:
            del memo[next(iter(memo))]
        return data

    async def _on_request(self, peer_id: str, data: bytes) -> bytes:
        # A connection either side uses is in use: pruning looks at both.
        self._last_used[peer_id] = time.monotonic()
        bad_before = self.core.counters["bad_message"]
        response, calls = self.core.handle(peer_id, data, time.time())
        self._background(calls)
        if self.core.counters["bad_message"] != bad_before and isinstance(
            self.transport, Disconnecting
        ):
            # It was told why (an Error answer); then dropped, as any peer that
            # breaks the protocol is. The connection closes after the answer.
            self.core.routing.remove(peer_id)
            self._spawn_disconnect(peer_id)
        return response

    def _spawn_disconnect(self, peer_id: str) -> None:
        async def later() -> None:
            await asyncio.sleep(0.05)  # let the error answer go out first
            with contextlib.suppress(PeerpoolError, OSError):
                await self.transport.disconnect(peer_id)  # type: ignore[attr-defined]

        self._spawn(later())

    def _background(self, calls: list[Call]) -> None:
        for call in calls:
            if self._stopping:
                return
            if len(self._tasks) >= self.max_background:
                self.core.counters["background_dropped"] += 1
                continue
            task = asyncio.ensure_future(self._send_merged(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _spawn_op(self, op: ops.Op[Any]) -> None:
        self._spawn(self._quietly(op))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain_events(self) -> None:
        assert isinstance(self.transport, HasEvents)
        while not self._stopping:
            try:
                events = await self.transport.next_events(1024, timeout=1.0)
            except PeerpoolError:  # the mesh node stopped
                return
            self.core.counters["mesh_events"] += len(events)

    async def _prune_hops(self) -> None:
        """Close connections this node opened to reach routing hops once they are
        idle and not fingers, successors or the predecessor: iterative lookups
        touch O(log n) nodes each, but a node keeps only O(log n) connections."""
        if not isinstance(self.transport, ListsPeers) or not isinstance(
            self.transport, Disconnecting
        ):
            return
        r = self.core.routing
        keep = {n.peer_id for n in r.known()}
        now = time.monotonic()
        for peer in list(self.transport.peers()):
            pid = peer.peer_id
            if pid in keep or getattr(peer, "direction", "outbound") != "outbound":
                continue
            if now - self._last_used.get(pid, 0.0) < self.idle_hop_timeout:
                continue
            self._last_used.pop(pid, None)
            self.core.counters["hops_disconnected"] += 1
            with contextlib.suppress(PeerpoolError, OSError):
                await self.transport.disconnect(pid)
        # The table is bounded by what is connected: forget the rest.
        for pid in [p for p, t in self._last_used.items() if now - t > 10 * self.idle_hop_timeout]:
            del self._last_used[pid]

    async def _quietly(self, op: ops.Op[Any]) -> None:
        with contextlib.suppress(ChordError):
            await self._run(op, 30.0, "background")

    async def _maintain(self) -> None:
        rounds = 0
        while not self._stopping:
            await asyncio.sleep(self.stabilise_interval)
            rounds += 1
            core = self.core
            for op, every in (
                (ops.check_predecessor(core), 1),
                (ops.stabilise(core), 1),
                (ops.fix_fingers(core), self.fix_fingers_every),
                (repair.repair(core, time.time_ns()), self.repair_every),
                (repair.rebuild(core, rounds // self.rebuild_every), self.rebuild_every),
            ):
                if rounds % every:
                    op.close()
                    continue
                try:
                    await self._run(op, 30.0, "maintenance")
                except (ChordLookupError, ChordTimeoutError):
                    core.counters["maintenance_failed"] += 1
            await self._prune_hops()
