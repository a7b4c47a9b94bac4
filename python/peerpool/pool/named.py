"""NamedPools: a connection budget split across named pools, and the bookkeeping of who is where.

Sans-I/O: no sockets, no asyncio. The owner (the mesh ``ConnectionPools``)
feeds it the live connections of each network and the routing decisions, and
acts on what it returns (disconnect the peers that fit nowhere). A peer is in
at most one pool. Each pool belongs to one network (a "P2P" in the agent
networks' words), so a peer id can be live on two networks and still sit in
exactly one pool.

Routing is a policy: any object with ``route(network, peer_id, info) -> pool
name | None`` (``None``: the peer belongs in no pool and is to be dropped).

:meth:`NamedPools.pending` compares a network's live connections with what
the pools track and says who is gone and who needs a routing decision: new
peers, and peers whose routing key changed. The key is what routing depends
on in a peer's info (``key=``, e.g. its direction); without one, the info
object itself is compared by identity. Either way a cycle in which nothing
changed costs one dict lookup per peer. :meth:`NamedPools.apply`
then places them, moving a peer whose decision changed and reporting it as
removed from the old pool and added to the new one. Every change lands in a
:class:`Changes` accumulator that the owner drains once per cycle.

Nothing is kept about a peer once it is gone: its pool entry, its tracked
info and any "rejected" mark go together.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from peerpool.errors import UnknownP2PError, UnknownPoolError
from peerpool.pool.budget import RATIO_TOLERANCE, pool_budgets

Info = TypeVar("Info")
_STALE = object()  # a tracked key that equals no live one: route the peer again
Record = TypeVar("Record")


class RoutingPolicy(Protocol):
    """Decides the pool of a live peer of a network (``None``: no pool, drop it)."""

    def route(self, network: str, peer_id: str, info: Any) -> str | None:
        """The pool for ``peer_id`` on ``network`` (``info`` as the owner keeps
        it), or None to keep it in no pool (the owner disconnects it)."""


class AddOutcome(enum.Enum):
    """What ``NamedPools.add`` did: ``ADDED``; ``ALREADY`` (the peer was in this
    pool); ``FULL`` (the pool is at capacity, or disabled); ``OTHER_POOL`` (the
    peer is in another pool: a peer is in at most one).
    """

    ADDED = "added"
    ALREADY = "already"  # already in this pool
    FULL = "full"  # the pool is at capacity (or disabled)
    OTHER_POOL = "other_pool"  # in another pool: a peer is in at most one


@dataclass
class Changes:
    """What changed since the owner last drained: added / removed / rejected-as-full per pool,
    and the peers that fit no pool (to disconnect)."""

    added: dict[str, set[str]] = field(default_factory=dict)
    removed: dict[str, set[str]] = field(default_factory=dict)
    full: dict[str, set[str]] = field(default_factory=dict)
    unroutable: dict[str, set[str]] = field(default_factory=dict)  # by network

    def _note(self, table: dict[str, set[str]], key: str, peer_id: str) -> None:
        table.setdefault(key, set()).add(peer_id)

    def note_added(self, pool: str, peer_id: str) -> None:
        """Record that ``peer_id`` joined ``pool`` (a peer that left and came back
        within one cycle is reported as both removed and added).
        """
        # a peer that left and came back within one cycle is reported in both sets
        self._note(self.added, pool, peer_id)

    def note_removed(self, pool: str, peer_id: str) -> None:
        """Record that ``peer_id`` left ``pool``."""
        self._note(self.removed, pool, peer_id)


class NamedPools(Generic[Info, Record]):
    """Pools by name with capacities from ratios (see :mod:`peerpool.pool.budget`)."""

    def __init__(
        self,
        max_connections: int,
        pools: Mapping[str, tuple[str, float]],
        networks: Collection[str],
        *,
        policy: RoutingPolicy | None = None,
        key: Callable[[Info], Any] | None = None,
        tolerance: float = RATIO_TOLERANCE,
    ) -> None:
        for name, (network, _ratio) in pools.items():
            if network not in networks:
                raise UnknownP2PError(f"pool {name!r} refers to unknown P2P {network!r}")
        self.max_connections = max_connections
        self.pool_names: list[str] = list(pools)
        self.capacity: dict[str, int | None] = pool_budgets(
            max_connections, {k: v[1] for k, v in pools.items()}, tolerance=tolerance
        )
        self.pool_network: dict[str, str] = {k: v[0] for k, v in pools.items()}
        self.network_pools: dict[str, list[str]] = {n: [] for n in networks}
        for name, network in self.pool_network.items():
            self.network_pools[network].append(name)
        self.policy = policy
        self._key = key
        self._members: dict[str, dict[str, Record]] = {name: {} for name in self.pool_names}
        self._pool_of: dict[str, str] = {}
        # per network: the routing key each tracked peer was placed with, and peers that fit nowhere
        self._tracked: dict[str, dict[str, Any]] = {n: {} for n in networks}
        self._rejected: dict[str, dict[str, Any]] = {n: {} for n in networks}
        self.changes = Changes()

    # --- queries -------------------------------------------------------------------

    def _check_pool(self, pool: str) -> None:
        if pool not in self._members:
            raise UnknownPoolError(f"unknown pool {pool!r}")

    def members(self, pool: str) -> Mapping[str, Record]:
        """The peers of ``pool``: peer id -> the record kept for it (read-only view).

        Raises:
            peerpool.errors.UnknownPoolError: there is no pool of that name.
        """
        self._check_pool(pool)
        return self._members[pool]

    def pool_of(self, peer_id: str) -> str | None:
        """The pool ``peer_id`` is in, or None."""
        return self._pool_of.get(peer_id)

    def size(self, pool: str | None = None) -> int:
        """The number of peers in ``pool``, or in all pools together when None.

        Raises:
            peerpool.errors.UnknownPoolError: there is no pool of that name.
        """
        if pool is None:
            return len(self._pool_of)
        self._check_pool(pool)
        return len(self._members[pool])

    def has_room(self, pool: str) -> bool:
        """True if ``pool`` is below its capacity (always, for an unlimited pool;
        never, for a disabled one).

        Raises:
            KeyError: there is no pool of that name.
        """
        cap = self.capacity[pool]
        return cap is None or len(self._members[pool]) < cap

    def tracked(self, network: str) -> Mapping[str, Any]:
        """Peer id -> routing key of the peers placed on a network."""
        return self._tracked[network]

    def __contains__(self, peer_id: object) -> bool:
        """Whether a peer is in some pool."""
        return peer_id in self._pool_of

    def mark_stale(self, peer_id: str) -> None:
        """A peer placed by hand (without its live info): check it against the live view,
        and route it again, at the next :meth:`pending`."""
        pool = self._pool_of.get(peer_id)
        if pool is not None:
            self._tracked[self.pool_network[pool]][peer_id] = _STALE

    def routing_key(self, info: Info) -> Any:
        """What a peer's placement depends on: ``key(info)``, or ``info`` itself without a ``key``.
        A peer whose key changes is routed again.
        """
        return info if self._key is None else self._key(info)

    # --- changes -------------------------------------------------------------------

    def add(self, peer_id: str, record: Record, pool: str, info: Info | None = None) -> AddOutcome:
        """Put a peer in a pool if it has room and the peer is in no other pool."""
        self._check_pool(pool)
        current = self._pool_of.get(peer_id)
        if current == pool:
            return AddOutcome.ALREADY
        if current is not None:
            return AddOutcome.OTHER_POOL
        if not self.has_room(pool):
            return AddOutcome.FULL
        network = self.pool_network[pool]
        self._members[pool][peer_id] = record
        self._pool_of[peer_id] = pool
        if info is not None:
            self._tracked[network][peer_id] = self.routing_key(info)
        self._rejected[network].pop(peer_id, None)
        self.changes.note_added(pool, peer_id)
        return AddOutcome.ADDED

    def discard(self, peer_id: str) -> str | None:
        """Take a peer out of its pool; its pool name, or None if it was in none."""
        pool = self._pool_of.pop(peer_id, None)
        if pool is None:
            return None
        del self._members[pool][peer_id]
        self._tracked[self.pool_network[pool]].pop(peer_id, None)
        self.changes.note_removed(pool, peer_id)
        return pool

    def forget(self, network: str, peer_id: str) -> str | None:
        """A peer's connection on ``network`` is gone: drop everything kept about it there."""
        self._rejected[network].pop(peer_id, None)
        pool = self._pool_of.get(peer_id)
        if pool is not None and self.pool_network[pool] == network:
            return self.discard(peer_id)
        self._tracked[network].pop(peer_id, None)
        return None

    def pending(self, network: str, live: Mapping[str, Info]) -> tuple[list[str], list[str]]:
        """``(gone, to_route)`` for a network: tracked peers not live any more, and live peers
        that are new or whose info object changed (rejected peers with unchanged info are
        not routed again)."""
        tracked = self._tracked[network]
        rejected = self._rejected[network]
        get = tracked.get
        # one pass for the common case: nothing changed for most peers
        key = self._key
        if key is None:
            to_route = [pid for pid, info in live.items() if get(pid) is not info]
        else:
            to_route = [pid for pid, info in live.items() if get(pid) != key(info)]
        # tracked peers still live = live peers minus the untracked ones (all in to_route);
        # only if fewer than tracked are some gone, and only then is the tracked set scanned
        untracked = sum(1 for pid in to_route if pid not in tracked)
        gone: list[str] = []
        if len(tracked) > len(live) - untracked:
            gone = [pid for pid in tracked if pid not in live]
        if rejected:
            rget = rejected.get
            if key is None:
                to_route = [pid for pid in to_route if rget(pid) is not live[pid]]
            else:
                to_route = [
                    pid
                    for pid in to_route
                    if pid not in rejected or rejected[pid] != key(live[pid])
                ]
            gone.extend(pid for pid in rejected if pid not in live)
        return gone, to_route

    def apply(
        self,
        network: str,
        decisions: Iterable[tuple[str, str | None, Info, Record]],
    ) -> list[str]:
        """Place routed peers: ``(peer_id, pool or None, info, record)``. Returns the peers to
        disconnect (routed to no pool, or to a pool that is full), noted in ``changes``."""
        drop: list[str] = []
        tracked = self._tracked[network]
        for peer_id, pool, info, record in decisions:
            current = self._pool_of.get(peer_id)
            if pool is not None and current == pool:
                self._members[pool][peer_id] = record
                tracked[peer_id] = self.routing_key(info)
                continue
            if current is not None and self.pool_network[current] == network:
                self.discard(peer_id)  # moved (e.g. changed direction), or now unroutable
            if pool is None:
                self._rejected[network][peer_id] = self.routing_key(info)
                self.changes._note(self.changes.unroutable, network, peer_id)
                drop.append(peer_id)
                continue
            if self.pool_network.get(pool) != network:
                raise UnknownPoolError(f"pool {pool!r} is not a pool of network {network!r}")
            outcome = self.add(peer_id, record, pool, info)
            if outcome is AddOutcome.FULL:
                self._rejected[network][peer_id] = self.routing_key(info)
                self.changes._note(self.changes.full, pool, peer_id)
                drop.append(peer_id)
            elif outcome is AddOutcome.OTHER_POOL:  # in a pool of another network already
                self._rejected[network][peer_id] = self.routing_key(info)
                self.changes._note(self.changes.unroutable, network, peer_id)
                drop.append(peer_id)
        return drop

    def invalidate(self, network: str) -> None:
        """The routing inputs of a network changed (a new roster): route all its peers again
        at the next :meth:`pending` (peers whose decision stays put are not reported)."""
        tracked = self._tracked[network]
        for peer_id in tracked:
            tracked[peer_id] = _STALE
        self._rejected[network].clear()

    def drain_changes(self) -> Changes:
        """The changes since the last call (added, removed, rejected as full, per pool), and start afresh."""
        changes, self.changes = self.changes, Changes()
        return changes
