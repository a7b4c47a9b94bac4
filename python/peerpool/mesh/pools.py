"""ConnectionPools: named pools of mesh connections with budgets, routing and tokens.

The API and documented semantics of the agent networks' ``ConnectionPools``
(so an agent moves over by changing an import), on our mesh node (or any
object with the :class:`~peerpool.mesh.MeshNode` interface: the "P2P object").
The bookkeeping is :class:`~peerpool.pool.NamedPools` (budgets by ratio, a
peer in at most one pool); this class adds the node's side:

- **Events first.** The pools are the one consumer of their nodes' events.
  Every call that looks at the network (:meth:`update`, :meth:`get_messages`)
  first drains the pending events in order, so a peer is in its pool as soon
  as its ``PeerConnected`` arrives, before any message it sent after
  connecting is checked (the original only saw a peer once it had opened a
  direct-message stream). Messages wait in a bounded inbox; when it is full
  the pools stop reading events and the node's own backpressure holds the
  senders.
- **update()** applies the pending connection events, and reconciles each
  node's live connections (``node.peers()``) with the pools: gone peers leave
  their pool, new peers and peers whose connection changed (their direction)
  are routed, and moves are reported as removed from the old pool and added
  to the new one. It returns the added and removed sets per pool since the
  previous update, every pool present. The full reconcile runs at most once
  per ``reconcile_interval`` seconds (or when asked, ``update(full=True)``):
  connects and disconnects arrive as events anyway, and listing 10,000 peers
  from the node costs more than the rest of a cycle (a direction change, which
  has no event, is therefore seen within that interval).
- **Full pools are reported**, not skipped in silence: the peer is
  disconnected, logged, counted (``stats["pool_full"]``) and listed by
  :meth:`get_rejected_after_updating`. Peers that the routing sends to no
  pool are disconnected and counted too (``stats["unroutable"]``).
- **Routing is pluggable:** override :meth:`conn_routing_fcn` (the original's
  hook, async, called with the peers that need a decision) or pass
  ``policy=`` (an object with ``route(p2p_name, peer_id, peer_info) -> pool``).
- **Messages** are accepted by :class:`~peerpool.mesh.acceptance.MessageGate`;
  each rejection has a reason and is counted in ``rejections``.

Peer infos are the original's dicts: ``id``, ``addrs`` (a list), ``direction``
(``"incoming"``/``"outgoing"``, the Go names), ``connected_at``, ``relayed``
and ``misc`` (the role bitmask, 0 for public peers; kept across a reconnect).
"""

from __future__ import annotations

import logging
import operator
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping
from typing import Any

from peerpool.errors import MeshError, PoolConfigError
from peerpool.mesh.acceptance import DISCONNECT_REASONS, Accepted, MessageGate
from peerpool.mesh.messages import Msg
from peerpool.mesh.pools_io import PoolsIOMixin
from peerpool.mesh.tokens import TokenVerifier
from peerpool.pool.named import AddOutcome, NamedPools, RoutingPolicy

log = logging.getLogger(__name__)

INBOX_SIZE = 65_536  # messages waiting for get_messages, per P2P (the node's event queue size)
DRAIN_BATCH = 4096
RECONCILE_INTERVAL = 1.0  # seconds between full reconciles against node.peers()
_UNSET = object()

PeerInfoDict = dict[str, Any]


def peer_info_dict(info: Any, misc: int) -> PeerInfoDict:
    """The original's peer-info dict from a node's PeerInfo."""
    return {
        "id": info.peer_id,
        "addrs": list(info.addrs),
        "direction": "incoming" if info.direction == "inbound" else "outgoing",
        "connected_at": info.connected_since,
        "relayed": bool(info.relayed),
        "misc": misc,
    }


class ConnectionPools(PoolsIOMixin):
    """Named pools over one or more P2P objects (see the module docstring)."""

    def __init__(
        self,
        max_connections: int,
        pool_name_to_p2p_name_and_ratio: Mapping[str, tuple[str, float] | list[Any]],
        p2p_name_to_p2p: Mapping[str, Any],
        public_key: str | bytes | None = None,
        token: str | None = None,
        *,
        policy: RoutingPolicy | None = None,
        inbox_size: int = INBOX_SIZE,
        reconcile_interval: float = RECONCILE_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        pools = {}
        for name, spec in pool_name_to_p2p_name_and_ratio.items():
            if len(spec) != 2:
                raise PoolConfigError(f"pool {name!r}: expected [p2p_name, ratio], got {spec!r}")
            pools[name] = (spec[0], spec[1])
        overridden = type(self).conn_routing_fcn is not ConnectionPools.conn_routing_fcn
        if policy is None and not overridden:
            raise PoolConfigError("no routing: pass policy= or override conn_routing_fcn")
        # routing depends on a peer's id and direction: a peer is routed again when its
        # direction changes (its first connection closed, another one remains)
        self._pools: NamedPools[Any, PeerInfoDict] = NamedPools(
            max_connections,
            pools,
            list(p2p_name_to_p2p),
            policy=policy,
            key=operator.attrgetter("direction"),
        )
        self.policy = policy
        self.max_con = max_connections
        self.pool_names = self._pools.pool_names
        self.pool_count = len(self.pool_names)
        self.p2p_name_to_p2p = dict(p2p_name_to_p2p)
        self._p2p_name = {id(p2p): name for name, p2p in self.p2p_name_to_p2p.items()}
        self._token = token or ""
        self._verifier = TokenVerifier(public_key, clock=clock) if public_key is not None else None
        self.gate = MessageGate(self._verifier)
        self._clock = clock
        self._inbox_size = inbox_size
        self._reconcile_interval = reconcile_interval
        self._last_full = -float("inf")
        self._joined_topics: dict[int, set[str]] = {}
        self._inbox: dict[str, deque[Any]] = {n: deque() for n in self.p2p_name_to_p2p}
        # roles survive a reconnect (the original's peer_id_to_misc); see NodeConn for pruning
        self.peer_id_to_misc: dict[str, int] = {}
        # pool members only: dropped with the peer
        self._last_token: dict[str, str] = {}
        self._last_seen: dict[str, float] = {}
        self.stats: Counter[str] = Counter()
        self._added: dict[str, set[str]] = {p: set() for p in self.pool_names}
        self._removed: dict[str, set[str]] = {p: set() for p in self.pool_names}
        self._full: dict[str, set[str]] = {p: set() for p in self.pool_names}

    def __getitem__(self, p2p_name: str) -> Any:
        return self.p2p_name_to_p2p[p2p_name]

    def __str__(self) -> str:
        lines = [f"[ConnectionPools] max_con={self.max_con}, pool_count={self.pool_count}"]
        for name in self.pool_names:
            cap = self._pools.capacity[name]
            peers = ", ".join(sorted(self._pools.members(name)))
            lines.append(
                f"\tpool={name}, max_con={'unlimited' if cap is None else cap}, "
                f"current_con={self._pools.size(name)}, peer_ids=({peers})"
            )
        return "\n".join(lines)

    @property
    def rejections(self) -> Counter[str]:
        """Rejected messages by reason."""
        return self.gate.rejections

    def capacity(self, pool_name: str) -> int | None:
        """A pool's capacity (None: unlimited)."""
        self._pools.members(pool_name)  # UnknownPoolError
        return self._pools.capacity[pool_name]

    # --- routing ----------------------------------------------------------------------

    async def conn_routing_fcn(
        self, connected_peer_infos: list[PeerInfoDict], p2p: Any
    ) -> dict[str, dict[str, PeerInfoDict]]:
        """Map peers to pools: ``{pool_name: {peer_id: peer_info}}``; peers left out belong in
        no pool (they are disconnected). Called with the peers that need a decision."""
        assert self.policy is not None  # checked in __init__
        name = self._p2p_name[id(p2p)]
        out: dict[str, dict[str, PeerInfoDict]] = {p: {} for p in self._pools.network_pools[name]}
        for info in connected_peer_infos:
            pool = self.policy.route(name, info["id"], info)
            if pool is not None:
                out.setdefault(pool, {})[info["id"]] = info
        return out

    async def _route(self, p2p_name: str, infos: list[Any]) -> None:
        p2p = self.p2p_name_to_p2p[p2p_name]
        records = {
            i.peer_id: peer_info_dict(i, self.peer_id_to_misc.get(i.peer_id, 0)) for i in infos
        }
        by_id = {i.peer_id: i for i in infos}
        routed = await self.conn_routing_fcn(list(records.values()), p2p)
        decisions: list[tuple[str, str | None, Any, PeerInfoDict]] = []
        for pool, peers in routed.items():
            for peer_id in peers:
                if peer_id in by_id:
                    decisions.append((peer_id, pool, by_id.pop(peer_id), records[peer_id]))
        decisions.extend((pid, None, info, records[pid]) for pid, info in by_id.items())
        before = {pid for pid, *_ in decisions if self._pools.pool_of(pid) is None}
        for peer_id in self._pools.apply(p2p_name, decisions):
            await self.disconnect(p2p, peer_id)
        now = self._clock()
        for peer_id in before:
            if self._pools.pool_of(peer_id) is not None:
                self._last_seen[peer_id] = now

    def _forget(self, p2p_name: str, peer_id: str) -> None:
        self._pools.forget(p2p_name, peer_id)
        if self._pools.pool_of(peer_id) is None:
            self._drop_peer_state(peer_id)

    def _drop_peer_state(self, peer_id: str) -> None:
        self._last_token.pop(peer_id, None)
        self._last_seen.pop(peer_id, None)
        if self._verifier is not None:
            self._verifier.forget(peer_id)

    # --- events ---------------------------------------------------------------------

    async def _drain(self, p2p_name: str) -> None:
        """Apply the node's pending events in order; messages go to the bounded inbox."""
        p2p = self.p2p_name_to_p2p[p2p_name]
        inbox = self._inbox[p2p_name]
        while True:
            room = min(self._inbox_size - len(inbox), DRAIN_BATCH)
            if room <= 0:
                self.stats["inbox_full"] += 1  # the node holds the rest (backpressure)
                return
            try:
                events = await p2p.next_events(max_events=room, timeout=0)
            except MeshError as exc:
                self.stats["node_closed"] += 1
                log.warning("%s: cannot read events: %s", p2p_name, exc)
                return
            for event in events:
                await self._on_event(p2p_name, event)
            if len(events) < room:
                return

    async def _on_event(self, p2p_name: str, event: Any) -> None:
        # dispatched by class name, so any P2P object with the node's event shapes fits
        kind = type(event).__name__
        if kind in ("DirectMessage", "TopicMessage"):
            if kind == "TopicMessage" and await self._on_topic_event(p2p_name, event):
                return
            self._inbox[p2p_name].append(event)
        elif kind == "PeerConnected":
            tracked = self._pools.tracked(p2p_name)
            info = event.info
            if tracked.get(info.peer_id, _UNSET) != self._pools.routing_key(info):
                await self._route(p2p_name, [info])
        elif kind == "PeerDisconnected":
            self._forget(p2p_name, event.peer_id)
        elif kind == "MessagesDropped":
            self.stats[f"node_dropped:{event.reason}"] += event.count
            log.warning("%s: node dropped %d message(s) (%s)", p2p_name, event.count, event.reason)

    async def _on_topic_event(self, p2p_name: str, event: Any) -> bool:
        """A hook for subclasses (NodeConn's roster); True if the event was consumed."""
        return False

    # --- pools ------------------------------------------------------------------------

    def add(self, peer_info: PeerInfoDict, pool_name: str) -> bool:
        """Put a connected peer in a pool (capacity checked; a peer is in at most one pool)."""
        peer_id = peer_info["id"]
        peer_info["misc"] = self.peer_id_to_misc.get(peer_id, 0)
        outcome = self._pools.add(peer_id, peer_info, pool_name)
        if outcome is AddOutcome.FULL:
            self.stats["pool_full"] += 1
            log.warning("pool %s is full: %s not added", pool_name, peer_id)
        if outcome is AddOutcome.ADDED:
            self._pools.mark_stale(peer_id)  # update() checks it is live, and drops it if not
            self._last_seen[peer_id] = self._clock()
        return outcome in (AddOutcome.ADDED, AddOutcome.ALREADY)

    async def remove(self, peer_id: str) -> bool:
        """Take a peer out of its pool and disconnect it (its role stays for a reconnect)."""
        pool = self._pools.pool_of(peer_id)
        if pool is None:
            return False
        p2p = self.p2p_name_to_p2p[self._pools.pool_network[pool]]
        ok = await self.disconnect(p2p, peer_id)
        self._pools.discard(peer_id)
        self._drop_peer_state(peer_id)
        return ok

    async def update(
        self, full: bool | None = None
    ) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """Reconcile live connections with the pools; ``(added, removed)`` per pool.
        ``full``: compare with the node's peer list now (True), or not (False); by default
        once per ``reconcile_interval``."""
        now = time.monotonic()
        if full is None:
            full = now - self._last_full >= self._reconcile_interval
        if full:
            self._last_full = now
        for p2p_name, p2p in self.p2p_name_to_p2p.items():
            await self._drain(p2p_name)
            if not full:
                continue
            try:
                live = {info.peer_id: info for info in p2p.peers()}
            except MeshError as exc:  # the node stopped: leave its pools as they are
                self.stats["node_closed"] += 1
                log.warning("%s: cannot list peers: %s", p2p_name, exc)
                continue
            gone, to_route = self._pools.pending(p2p_name, live)
            for peer_id in gone:
                self._forget(p2p_name, peer_id)
            if to_route:
                await self._route(p2p_name, [live[pid] for pid in to_route])
        changes = self._pools.drain_changes()
        self._added = {p: changes.added.get(p, set()) for p in self.pool_names}
        self._removed = {p: changes.removed.get(p, set()) for p in self.pool_names}
        self._full = {p: changes.full.get(p, set()) for p in self.pool_names}
        for pool, peers in changes.full.items():
            self.stats["pool_full"] += len(peers)
            log.warning("pool %s is full: %d peer(s) disconnected", pool, len(peers))
        for network, peers in changes.unroutable.items():
            self.stats["unroutable"] += len(peers)
            log.info("%s: %d peer(s) fit no pool and were disconnected", network, len(peers))
        return self._added, self._removed

    def get_added_after_updating(self, pool_name: str | None = None) -> Any:
        return self._added if pool_name is None else self._added[pool_name]

    def get_removed_after_updating(self, pool_name: str | None = None) -> Any:
        return self._removed if pool_name is None else self._removed[pool_name]

    def get_rejected_after_updating(self, pool_name: str | None = None) -> Any:
        """Peers that routed to a full pool in the last update (disconnected)."""
        return self._full if pool_name is None else self._full[pool_name]

    def get_all_connected_peer_infos(self, pool_name: str) -> list[PeerInfoDict]:
        return list(self._pools.members(pool_name).values())

    def get_pool_status(self) -> dict[str, set[str]]:
        return {p: set(self._pools.members(p)) for p in self.pool_names}

    def get_all_connected_peer_ids(self) -> list[str]:
        return [pid for p in self.pool_names for pid in self._pools.members(p)]

    def is_connected(self, peer_id: str, pool_name: str | None = None) -> bool:
        pool = self._pools.pool_of(peer_id)
        return pool is not None and (pool_name is None or pool == pool_name)

    def get_pool_of(self, peer_id: str) -> str | None:
        return self._pools.pool_of(peer_id)

    def size(self, pool_name: str | None = None) -> int:
        return self._pools.size(pool_name)

    def _peer_info(self, peer_id: str) -> PeerInfoDict | None:
        pool = self._pools.pool_of(peer_id)
        return None if pool is None else self._pools.members(pool)[peer_id]

    # --- messages -------------------------------------------------------------------

    async def get_messages(
        self, p2p_name: str, allowed_not_connected_peers: Collection[str] | None = None
    ) -> list[Msg]:
        """Accepted messages from one P2P; ``piggyback`` becomes node id + inspector bit."""
        p2p = self.p2p_name_to_p2p[p2p_name]
        await self._drain(p2p_name)
        inbox = self._inbox[p2p_name]
        accepted: list[Msg] = []
        is_member = self._pools.__contains__
        while inbox:
            event = inbox.popleft()
            direct = type(event).__name__ == "DirectMessage"
            sender = event.peer_id if direct else event.source
            payload = event.payload if direct else event.data
            result = self.gate.check(payload, sender, is_member, allowed_not_connected_peers)
            if isinstance(result, Accepted):
                msg = result.msg
                msg.piggyback = result.claims.node_id + result.inspector_bit
                if is_member(sender):
                    self._last_token[sender] = result.token
                    self._last_seen[sender] = self._clock()
                accepted.append(msg)
            elif direct and result.reason in DISCONNECT_REASONS and result.sender is not None:
                self.stats["disconnected_misbehaving"] += 1
                await self.disconnect(p2p, result.sender)
        return accepted

    def set_token(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str, peer_id: str) -> tuple[str | None, str | None]:
        """``(node_id, cv_hash)`` of a valid token for ``peer_id``, else ``(None, None)``."""
        from peerpool.errors import TokenError

        if self._verifier is None:
            return None, None
        try:
            claims = self._verifier.verify(token, peer_id)
        except TokenError:
            return None, None
        return claims.node_id, claims.cv_hash

    def get_last_token(self, peer_id: str) -> str | None:
        return self._last_token.get(peer_id)

    def passed_time_since_last_communication(self, peer_id: str) -> float | None:
        """Seconds since the last accepted message from a pool member (or since it joined)."""
        seen = self._last_seen.get(peer_id)
        return None if seen is None else self._clock() - seen
