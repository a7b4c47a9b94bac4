"""A P2P object double for unit tests of the pools' state machine (never for integration tests).

It has the MeshNode interface the pools use (peers, events, dial, send, topics)
and event classes with the node's names and fields; the test drives it by
connecting, dropping and re-pointing peers and delivering messages.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from peerpool.errors import MeshError

_ids = itertools.count(1)


def fake_peer_id(tag: str = "") -> str:
    return f"12D3KooWfake{tag}{next(_ids):06d}"


@dataclass(frozen=True)
class PeerInfo:
    peer_id: str
    addrs: tuple[str, ...]
    direction: Literal["inbound", "outbound"]
    relayed: bool
    connected_since: float


@dataclass(frozen=True)
class DirectMessage:
    peer_id: str
    channel: str
    payload: bytes
    received_at: float


@dataclass(frozen=True)
class TopicMessage:
    topic: str
    source: str | None
    via: str
    data: bytes
    received_at: float


@dataclass(frozen=True)
class PeerConnected:
    info: PeerInfo


@dataclass(frozen=True)
class PeerDisconnected:
    peer_id: str
    cause: str | None


@dataclass(frozen=True)
class MessagesDropped:
    reason: str
    peer_id: str | None
    count: int


class FakeP2P:
    def __init__(self, peer_id: str | None = None) -> None:
        self.peer_id = peer_id or fake_peer_id("self")
        self._peers: dict[str, PeerInfo] = {}
        self.events: deque[object] = deque()
        self.sent: list[tuple[str, str, bytes]] = []
        self.published: list[tuple[str, bytes]] = []
        self.subscribed: set[str] = set()
        self.disconnected: list[str] = []
        self.dialed: list[list[str]] = []
        self.dialable: dict[str, str] = {}  # address -> peer id

    # --- driven by the test ---------------------------------------------------------

    def connect_peer(
        self, peer_id: str | None = None, direction: str = "inbound", event: bool = True
    ) -> PeerInfo:
        peer_id = peer_id or fake_peer_id()
        info = PeerInfo(peer_id, ("/ip4/127.0.0.1/tcp/4001",), direction, False, time.time())  # type: ignore[arg-type]
        self._peers[peer_id] = info
        if event:
            self.events.append(PeerConnected(info))
        return info

    def drop_peer(self, peer_id: str, event: bool = True) -> None:
        if self._peers.pop(peer_id, None) is not None and event:
            self.events.append(PeerDisconnected(peer_id, "closed"))

    def change_direction(self, peer_id: str, direction: str) -> None:
        self._peers[peer_id] = replace(self._peers[peer_id], direction=direction)  # type: ignore[arg-type]

    def deliver(self, peer_id: str, payload: bytes, channel: str = "") -> None:
        self.events.append(DirectMessage(peer_id, channel, payload, time.time()))

    def deliver_topic(self, topic: str, source: str | None, data: bytes, via: str = "") -> None:
        self.events.append(TopicMessage(topic, source, via or (source or ""), data, time.time()))

    # --- the MeshNode interface ------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        return list(self._peers.values())

    def is_connected(self, peer_id: str) -> bool:
        return peer_id in self._peers

    async def next_events(
        self, max_events: int = 1024, timeout: float | None = None
    ) -> list[object]:
        out = []
        while self.events and len(out) < max_events:
            out.append(self.events.popleft())
        return out

    async def dial(self, addrs: str | Sequence[str], *, timeout: float = 10.0) -> PeerInfo:
        addrs = [addrs] if isinstance(addrs, str) else list(addrs)
        self.dialed.append(addrs)
        for a in addrs:
            if a in self.dialable:
                return self.connect_peer(self.dialable[a], direction="outbound")
        raise MeshError(f"cannot dial {addrs}")

    async def disconnect(self, peer_id: str) -> None:
        self.disconnected.append(peer_id)
        self.drop_peer(peer_id)

    async def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        if peer_id not in self._peers:
            raise MeshError(f"{peer_id} is not connected")
        self.sent.append((peer_id, channel, payload))

    async def subscribe(self, topic: str) -> None:
        self.subscribed.add(topic)

    async def unsubscribe(self, topic: str) -> None:
        self.subscribed.discard(topic)

    async def publish(self, topic: str, data: bytes) -> None:
        self.published.append((topic, data))

    async def reserve(self, relay_addr: str, *, timeout: float = 10.0) -> float:
        return time.time() + 3600
