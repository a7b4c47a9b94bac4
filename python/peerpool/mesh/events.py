"""What a mesh node reports: connection facts and the events of ``next_events``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class PeerInfo:
    """What a node knows of a connected peer: its id, the remote addresses of its
    live connections, the direction (``"inbound"``/``"outbound"``) and relaying
    of its first live connection, and since when (``time.time()``).
    """

    peer_id: str
    addrs: tuple[str, ...]  # remote addresses of its live connections
    direction: Literal["inbound", "outbound"]  # of its first live connection
    relayed: bool  # through /p2p-circuit
    connected_since: float  # time.time() of the first live connection


@dataclass(frozen=True)
class DirectMessage:
    """One frame on /unaiverse/chat/1.0.0."""

    peer_id: str  # the sender the secure channel authenticated
    channel: str
    payload: bytes
    received_at: float


@dataclass(frozen=True)
class TopicMessage:
    """A pub/sub message on a subscribed topic: ``source`` is the author (verified
    by gossipsub's signature; only claimed under floodsub), ``via`` the peer that
    forwarded it to us.
    """

    topic: str
    source: str | None  # the author whose signature was verified
    via: str  # the peer that forwarded it to us
    data: bytes
    received_at: float


@dataclass(frozen=True)
class PeerConnected:
    """The first connection to a peer came up; ``info`` describes it."""

    info: PeerInfo


@dataclass(frozen=True)
class PeerDisconnected:
    """The last connection to ``peer_id`` closed; ``cause`` says why when known."""

    peer_id: str
    cause: str | None


@dataclass(frozen=True)
class MessagesDropped:
    """A policy dropped messages: never silent."""

    reason: str  # e.g. "frame_too_large", "bad_frame", "queue_full", "send_failed"
    peer_id: str | None
    count: int


MeshEvent = DirectMessage | TopicMessage | PeerConnected | PeerDisconnected | MessagesDropped
"""Any event ``MeshNode.next_events`` returns."""


def peer_info(t: tuple[Any, ...]) -> PeerInfo:
    peer_id, addrs, direction, relayed, since = t
    return PeerInfo(peer_id, tuple(addrs), direction, relayed, since)


_new = object.__new__


def _direct(t: tuple[Any, ...]) -> DirectMessage:
    # A frozen dataclass's __init__ sets each field through object.__setattr__,
    # about half of what a received message costs Python at 100,000/s; filling
    # the instance dict directly builds the same object in half the time.
    ev = _new(DirectMessage)
    d = ev.__dict__
    d["peer_id"], d["channel"], d["payload"], d["received_at"] = t[1], t[2], t[3], t[4]
    return ev


def event_from_tuple(t: tuple[Any, ...]) -> MeshEvent:
    """The binding's event tuples (rust/src/py/mesh.rs) as dataclasses."""
    kind = t[0]
    if kind == "direct":
        return _direct(t)
    if kind == "topic":
        return TopicMessage(t[1], t[2], t[3], t[4], t[5])
    if kind == "connected":
        return PeerConnected(peer_info(t[1]))
    if kind == "disconnected":
        return PeerDisconnected(t[1], t[2])
    if kind == "dropped":
        return MessagesDropped(t[1], t[2], t[3])
    raise AssertionError(f"unknown mesh event {kind!r}")  # the binding and this file disagree
