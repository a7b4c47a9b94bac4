"""The network calls of ConnectionPools: dial, disconnect, reserve, send, topics.

Each returns what the original returns (a bool, or ``None`` on failure) and
logs the node's typed error instead of raising it, so agent loops written for
the original keep working. Bad arguments from the caller (content that is not
serialisable) still raise.

Dialing keeps loopback addresses (the original threw away every address
containing 127.0.0.1, so two agents on one machine could not meet) and tries
QUIC addresses before the others.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from peerpool.errors import MeshError
from peerpool.mesh.messages import Msg

if TYPE_CHECKING:
    from peerpool.pool.named import NamedPools

log = logging.getLogger(__name__)


def order_addresses(addresses: list[str]) -> list[str]:
    """QUIC first, then the rest, in their order; duplicates out; nothing thrown away."""
    seen: dict[str, None] = {}
    for a in addresses:
        if isinstance(a, str) and a:
            seen.setdefault(a, None)
    unique = list(seen)
    return [a for a in unique if "/udp/" in a] + [a for a in unique if "/udp/" not in a]


class PoolsIOMixin:
    p2p_name_to_p2p: dict[str, Any]
    _pools: NamedPools[Any, Any]
    _token: str
    _joined_topics: dict[int, set[str]]  # per P2P object: topics we published on
    stats: Any

    if TYPE_CHECKING:

        async def _route(self, p2p_name: str, infos: list[Any]) -> None: ...

    def _p2p_of_peer(self, peer_id: str) -> Any | None:
        pool = self._pools.pool_of(peer_id)
        return None if pool is None else self.p2p_name_to_p2p[self._pools.pool_network[pool]]

    def _p2p_for_topic(self, peer_id: str, default_p2p_name: str | None) -> Any | None:
        # the topic's owner is one of our own nodes, or a peer in a pool, or the default network
        for p2p in self.p2p_name_to_p2p.values():
            if p2p.peer_id == peer_id:
                return p2p
        p2p = self._p2p_of_peer(peer_id)
        if p2p is None and default_p2p_name is not None:
            p2p = self.p2p_name_to_p2p[default_p2p_name]
        return p2p

    async def connect(self, addresses: list[str], p2p_name: str) -> tuple[str | None, bool]:
        """Dial a peer; ``(peer_id, through_relay)``, or ``(None, False)`` if it failed.
        The peer is routed into its pool right away."""
        p2p = self.p2p_name_to_p2p[p2p_name]
        ordered = order_addresses(list(addresses))
        if not ordered:
            log.error("%s: nothing to dial (no valid address in %r)", p2p_name, addresses)
            return None, False
        try:
            info = await p2p.dial(ordered)
        except MeshError as exc:
            self.stats["dial_failed"] += 1
            log.error("%s: dial %s failed: %s", p2p_name, ordered, exc)
            return None, False
        if info.peer_id not in self._pools.tracked(p2p_name):
            await self._route(p2p_name, [info])
        return info.peer_id, bool(info.relayed)

    @staticmethod
    async def disconnect(p2p: Any, peer_id: str) -> bool:
        try:
            await p2p.disconnect(peer_id)
        except MeshError as exc:
            log.info("disconnect %s: %s", peer_id, exc)
            return False
        return True

    async def reserve(self, peer_id: str, p2p_name: str) -> float | None:
        """A reservation on a relay (a multiaddr, or the id of a peer we know the address of);
        its expiry as a time.time() value, or None."""
        p2p = self.p2p_name_to_p2p[p2p_name]
        relay = peer_id
        if not peer_id.startswith("/"):
            pool = self._pools.pool_of(peer_id)
            addrs = self._pools.members(pool)[peer_id]["addrs"] if pool is not None else []
            if not addrs:
                log.error("%s: no known address of relay %s", p2p_name, peer_id)
                return None
            relay = f"{addrs[0]}/p2p/{peer_id}"
        try:
            return float(await p2p.reserve(relay))
        except MeshError as exc:
            log.error("%s: reservation on %s failed: %s", p2p_name, relay, exc)
            return None

    async def _join(self, p2p: Any, topic: str) -> None:
        """Subscribe before the first publish on a topic, as go-libp2p publishes on joined
        topics (our node can publish without, through gossipsub's fanout; joining keeps
        the Go nodes' order of things)."""
        joined = self._joined_topics.setdefault(id(p2p), set())
        if topic not in joined:
            await p2p.subscribe(topic)
            joined.add(topic)

    def _message(self, p2p: Any, channel: str, content_type: str, content: Any) -> bytes:
        msg = Msg(
            sender=p2p.peer_id,
            content_type=content_type,
            content=content,
            channel=channel,
            piggyback=self._token + "0",  # our inspector bit is always 0
        )
        return msg.to_bytes()

    async def send(
        self,
        peer_id: str,
        channel_trail: str | None,
        content_type: str,
        content: Any = None,
        p2p: Any = None,
    ) -> bool:
        """A direct message on ``<our id>::dm:<peer id>-<content type>[~<trail>]``."""
        if p2p is None:
            p2p = self._p2p_of_peer(peer_id)
            if p2p is None:
                log.error("send: %s is in no pool", peer_id)
                return False
        channel = f"{p2p.peer_id}::dm:{peer_id}-{content_type}"
        if channel_trail:
            channel += f"~{channel_trail}"
        data = self._message(p2p, channel, content_type, content)
        try:
            await p2p.send(peer_id, channel, data)
        except MeshError as exc:
            self.stats["send_failed"] += 1
            log.error("send to %s failed: %s", peer_id, exc)
            return False
        return True

    async def subscribe(
        self, peer_id: str, channel: str, default_p2p_name: str | None = None
    ) -> bool:
        return await self._topic_membership("subscribe", peer_id, channel, default_p2p_name)

    async def unsubscribe(
        self, peer_id: str, channel: str, default_p2p_name: str | None = None
    ) -> bool:
        return await self._topic_membership("unsubscribe", peer_id, channel, default_p2p_name)

    async def _topic_membership(
        self, action: str, peer_id: str, channel: str, default_p2p_name: str | None
    ) -> bool:
        """Subscribe or unsubscribe on the network the topic's owner is on;
        False (logged) when there is none or the node refuses."""
        p2p = self._p2p_for_topic(peer_id, default_p2p_name)
        if p2p is None:
            return False
        try:
            await getattr(p2p, action)(channel)
        except MeshError as exc:
            log.error("%s %s failed: %s", action, channel, exc)
            return False
        return True

    async def publish(
        self, peer_id: str, channel: str, content_type: str, content: Any = None
    ) -> bool:
        p2p = self._p2p_for_topic(peer_id, None)
        if p2p is None:
            return False
        data = self._message(p2p, channel, content_type, content)
        try:
            await self._join(p2p, channel)
            await p2p.publish(channel, data)
        except MeshError as exc:
            self.stats["publish_failed"] += 1
            log.error("publish on %s failed: %s", channel, exc)
            return False
        return True
