"""Per-connection state, limits and counters of the directory node.

Kept apart from :mod:`peerpool.joinmarket.server_core` (the logic) so that the
knobs an operator tunes and the numbers they watch are in one short file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from peerpool.joinmarket.messages import NOT_SERVING_ONION
from peerpool.joinmarket.nickauth import NickAuthChallenge
from peerpool.joinmarket.peerlist import MAX_LOCATION, PeerEntry
from peerpool.joinmarket.wire import MAX_LINE_BYTES, LineBuffer


class Writer(Protocol):
    """What the core needs of a connection's transport (asyncio.Transport fits)."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def get_write_buffer_size(self) -> int: ...


class PeerState(enum.Enum):
    HANDSHAKE = 0
    AUTHENTICATING = 1
    READY = 2
    CLOSED = 3


@dataclass
class ServerConfig:
    network: str
    motd: str = "peerpool JoinMarket directory"
    directory_id: str | None = None  # nick auth is offered when set (JMP-0005)
    max_line: int = MAX_LINE_BYTES
    max_peers: int = 10_000
    rate: float = 100.0  # lines per second per connection, sustained
    burst: float = 500.0  # lines a connection may send at once
    max_rate_violations: int = 1_000  # dropped lines before the connection is cut
    max_write_buffer: int = 8 * 1024 * 1024  # a reader slower than this is cut
    handshake_timeout: float = 30.0
    idle_ping: float = 60.0  # ping a quiet peer after this many seconds
    idle_timeout: float = 180.0  # cut a peer silent for this long


@dataclass
class ServerStats:
    accepted: int = 0
    rejected: int = 0
    public_relayed: int = 0
    public_deliveries: int = 0
    private_relayed: int = 0
    dropped_spoofed: int = 0
    dropped_no_recipient: int = 0
    dropped_rate: int = 0
    dropped_unknown: int = 0
    closed_bad_input: int = 0
    closed_slow: int = 0
    closed_idle: int = 0


class Conn:
    """One connection's state, keyed by identity (the object) in the core."""

    __slots__ = (
        "addr",
        "challenge",
        "features",
        "handshake_line",
        "last_refill",
        "last_seen",
        "lines",
        "location",
        "nick",
        "opened",
        "pinged",
        "state",
        "tokens",
        "violations",
        "writer",
    )

    def __init__(self, writer: Writer, addr: str, now: float, max_line: int, burst: float) -> None:
        self.writer = writer
        self.addr = addr
        self.lines = LineBuffer(max_line)
        self.state = PeerState.HANDSHAKE
        self.nick = ""
        self.location = NOT_SERVING_ONION
        self.features: frozenset[str] = frozenset()
        self.handshake_line = ""
        self.challenge: NickAuthChallenge | None = None
        self.tokens = burst
        self.last_refill = now
        self.last_seen = now
        self.opened = now
        self.pinged = False
        self.violations = 0

    def entry(self, disconnected: bool = False) -> PeerEntry:
        return PeerEntry(self.nick, self.location, disconnected, self.features)


def valid_location(location: str) -> bool:
    if location == NOT_SERVING_ONION:
        return True
    host, sep, port = location.rpartition(":")
    return (
        bool(sep and host and port.isdigit())
        and 0 < int(port) < 65536
        and len(location) <= MAX_LOCATION
        and not any(c in location for c in ",;! ")
    )
