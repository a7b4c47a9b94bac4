"""The asyncio DHT node: py2p's ChordSocket API, async, over a mesh transport.

The ring work is the sans-I/O core's (core.py, ops.py); driver.py carries it
over the transport. This file is the API: the dict methods, membership, and
py2p's routing names.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from peerpool.chord import ops
from peerpool.chord.driver import Driver
from peerpool.chord.ring import RING_SIZE, distance, get_hashes
from peerpool.chord.storage import Entry, Value
from peerpool.chord.transport import Disconnecting
from peerpool.chord.types import NodeRef, check_key, check_value
from peerpool.chord.vote import Vote
from peerpool.errors import (
    ChordError,
    ChordJoinError,
    ChordKeyError,
    ChordTimeoutError,
    NoMajorityError,
    PeerpoolError,
)

_NO_DEFAULT = object()


class ChordNode(Driver):
    """A member of the ring (after ``join``), or a lone ring of one (before).

    ``ChordNode(transport, replicas=3, ...)``: see :class:`Driver` for the
    options; ``transport`` is a started MeshNode (or anything of its shape).
    """

    # --- membership --------------------------------------------------------------------

    async def join(self, bootstrap: str | Sequence[str], *, timeout: float = 10.0) -> None:
        """Join the ring through a node at ``bootstrap`` (multiaddrs ending /p2p/<id>)."""
        addrs = (bootstrap,) if isinstance(bootstrap, str) else tuple(bootstrap)
        try:
            info = await asyncio.wait_for(self.transport.dial(addrs, timeout=timeout), timeout)
        except (PeerpoolError, OSError, asyncio.TimeoutError) as exc:
            raise ChordJoinError(f"could not reach the bootstrap node at {addrs}: {exc}") from exc
        node = NodeRef(info.peer_id, addrs[:8])
        self._last_used[node.peer_id] = time.monotonic()
        await self._run(ops.join(self.core, node), timeout, "join")
        self._spawn_op(ops.fix_fingers(self.core))

    async def unjoin(self, *, timeout: float = 10.0) -> None:
        """Stop storing: hand everything to the successor, keep routing and querying."""
        await self._run(ops.hand_off(self.core, int(time.time() * 1000)), timeout, "unjoin")

    async def leave(self, *, timeout: float = 10.0) -> None:
        """Hand everything to the successor, tell the neighbours, and stop."""
        try:
            await self.unjoin(timeout=timeout)
        finally:
            await self.stop()

    async def disconnect_least_efficient(self) -> bool:
        """Drop the finger that adds least (py2p: the node in the narrowest gap
        between its neighbours); successors and predecessor are never dropped."""
        r = self.core.routing
        keep = {n.peer_id for n in r.successors} | (
            {r.predecessor.peer_id} if r.predecessor else set()
        )
        ring = sorted(r.known(), key=lambda n: n.id)
        best: tuple[int, NodeRef] | None = None
        for i, mid in enumerate(ring):
            if mid.peer_id in keep or len(ring) < 3:
                continue
            gap = distance(ring[i - 1].id, ring[(i + 1) % len(ring)].id)
            if best is None or gap < best[0]:
                best = (gap, mid)
        if best is None:
            return False
        r.remove(best[1].peer_id)
        if isinstance(self.transport, Disconnecting):
            with contextlib.suppress(PeerpoolError, OSError):
                await self.transport.disconnect(best[1].peer_id)
        return True

    # --- routing, as py2p names it --------------------------------------------------------

    def find(self, key: int) -> NodeRef:
        """The known node closest at or before ``key`` (this node included): the next hop."""
        candidates = [*self.core.routing.known(), *([self.core.me] if self.core.storing else [])]
        return min(candidates, key=lambda n: distance(n.id, key), default=self.core.me)

    def find_prev(self, key: int) -> NodeRef:
        """The known node closest at or after ``key`` (py2p's find_prev)."""
        candidates = [*self.core.routing.known(), *([self.core.me] if self.core.storing else [])]
        return min(candidates, key=lambda n: distance(key, n.id), default=self.core.me)

    @property
    def next(self) -> NodeRef:
        """This node's successor on the ring (itself in a ring of one).

        Raises:
            peerpool.errors.ChordStateError: the node is not started.
        """
        return self.core.routing.successor

    @property
    def prev(self) -> NodeRef:
        """This node's predecessor on the ring (itself while it has none).

        Raises:
            peerpool.errors.ChordStateError: the node is not started.
        """
        return self.core.routing.predecessor or self.core.me

    async def lookup(self, key: int, *, timeout: float = 10.0) -> tuple[NodeRef, int]:
        """The node that owns ring position ``key``, routed hop by hop, and the hops taken."""
        return await self._run(ops.find_owner(self.core, key % RING_SIZE), timeout, "lookup")

    # --- the dict API ------------------------------------------------------------------

    async def get(self, key: object, default: Any = None, *, timeout: float = 10.0) -> Any:
        """The value most of the key's five positions agree on (more than two),
        or ``default`` when that majority says the key is missing.

        One request per owner, carrying all the positions it owns; a position
        its guessed owner does not settle (the ring moved, the node died) is
        then routed on its own."""
        k = check_key(key)
        groups, alone = ops.plan_get(self.core, list(enumerate(get_hashes(k))))
        vote = Vote()
        # Each task answers a list of items: a group's, or one routed position.
        items_of: dict[asyncio.Future[Any], list[tuple[int, int]]] = {}
        group_tasks: set[asyncio.Future[Any]] = set()

        def route_alone(item: tuple[int, int]) -> None:
            one: asyncio.Future[Any] = asyncio.ensure_future(
                self._drive(ops.get_position(self.core, *item))
            )
            items_of[one] = [item]

        for node, items in groups:
            group: asyncio.Future[Any] = asyncio.ensure_future(
                self._drive(ops.get_group(self.core, node, items))
            )
            items_of[group] = items
            group_tasks.add(group)
        for item in alone:
            route_alone(item)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while items_of and not (vote.decided or vote.hopeless):
                done, _ = await asyncio.wait(
                    items_of,
                    timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    raise ChordTimeoutError(
                        f"get of {k!r}: {vote.pending} positions unanswered after {timeout} s"
                    )
                for task in done:
                    items = items_of.pop(task)
                    try:
                        result = task.result()
                    except ChordError:
                        for _ in items:
                            vote.fail()
                        continue
                    answers = result if task in group_tasks else [result]
                    for item, answer in zip(items, answers, strict=True):
                        if answer is ops.UNSETTLED:
                            route_alone(item)
                        else:
                            vote.add(answer)  # a value, or None: missing
        finally:
            for task in items_of:
                task.cancel()
        decided, value = vote.result()
        if not decided:
            raise NoMajorityError(
                f"no majority among the five positions of {k!r}: {dict(vote.counts)}"
            )
        return default if value is None else value

    async def set(self, key: object, value: object, *, timeout: float = 10.0) -> None:
        """Store ``value`` under the key's five positions (``None`` deletes, as in py2p).

        Sets made while others are being written are coalesced into one write
        (one Put per owner for all of them)."""
        entries = self._entries(key, value)
        try:
            async with asyncio.timeout(timeout):
                await self._writes.write(entries)
        except TimeoutError:
            raise ChordTimeoutError(f"set did not complete within {timeout} s") from None

    async def update(
        self, mapping: Mapping[Any, Any] | Iterable[tuple[Any, Any]], *, timeout: float = 30.0
    ) -> None:
        """Every pair, checked first, stored together (one Put per owner where it can)."""
        pairs = mapping.items() if isinstance(mapping, Mapping) else mapping
        entries = [e for key, value in pairs for e in self._entries(key, value)]
        await self._run(ops.put_entries(self.core, entries), timeout, "update")

    async def pop(self, key: object, default: Any = _NO_DEFAULT, *, timeout: float = 10.0) -> Any:
        """Remove the key and return its value (``default`` if it is missing).

        Raises:
            peerpool.errors.ChordKeyError: the key is missing and no ``default`` was given.
            peerpool.errors.ChordTypeError: the key is of a type the ring does not store.
            peerpool.errors.NoMajorityError: the key's positions do not agree.
            peerpool.errors.ChordTimeoutError: the ring did not answer within ``timeout``.
        """
        value = await self.get(key, _NO_DEFAULT, timeout=timeout)
        if value is _NO_DEFAULT:
            if default is _NO_DEFAULT:
                raise ChordKeyError(key)
            return default
        await self.set(key, None, timeout=timeout)
        return value

    async def popitem(self, *, timeout: float = 10.0) -> tuple[Value, Any]:
        """Remove some key of the ring and return ``(key, value)``.

        Raises:
            peerpool.errors.ChordKeyError: the ring holds no keys.
            peerpool.errors.ChordTimeoutError: the ring did not answer within ``timeout``.
        """
        for key in await self.keys(timeout=timeout):
            value = await self.get(key, _NO_DEFAULT, timeout=timeout)
            if value is not _NO_DEFAULT:
                await self.set(key, None, timeout=timeout)
                return key, value
        raise ChordKeyError("popitem(): the ring holds no keys")

    async def keys(self, *, timeout: float = 30.0) -> list[Value]:
        """Every key on the ring: one walk round it, each node listing its own arc."""
        found = await self._run(ops.walk(self.core), timeout, "keys")
        return [e.key for e in found.values() if e.value is not None]

    async def values(self, *, timeout: float = 30.0) -> list[Any]:
        """Every value on the ring (one walk round it, then a ``get`` per key).

        Raises:
            peerpool.errors.ChordTimeoutError: the ring did not answer within ``timeout``.
        """
        return [v for _, v in await self.items(timeout=timeout)]

    async def items(self, *, timeout: float = 30.0) -> list[tuple[Value, Any]]:
        """Every ``(key, value)`` on the ring (one walk round it, then a ``get`` per key).

        Raises:
            peerpool.errors.ChordTimeoutError: the ring did not answer within ``timeout``.
        """
        keys = await self.keys(timeout=timeout)
        values = await asyncio.gather(*(self.get(k, _NO_DEFAULT, timeout=timeout) for k in keys))
        return [(k, v) for k, v in zip(keys, values, strict=True) if v is not _NO_DEFAULT]

    async def copy(self, *, timeout: float = 30.0) -> dict[Value, Any]:
        """The whole ring's contents as a dict (``dict(await node.items())``).

        Raises:
            peerpool.errors.ChordTimeoutError: the ring did not answer within ``timeout``.
        """
        return dict(await self.items(timeout=timeout))

    def dump_data(self, start: int, end: int | None) -> dict[bytes, dict[int, Value]]:
        """This node's own values by table (b"sha1" ... b"sha512"), as py2p returns them."""
        return self.core.dump_data(start, end)

    # --- helpers ----------------------------------------------------------------------

    def _entries(self, key: object, value: object) -> list[Entry]:
        k = check_key(key)
        v = None if value is None else check_value(value, self.core.max_value_bytes)
        version = self.core.next_version(time.time_ns())
        return [Entry(i, pos, k, v, version) for i, pos in enumerate(get_hashes(k))]
