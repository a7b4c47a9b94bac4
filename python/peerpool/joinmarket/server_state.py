"""Per-connection state, limits and counters of the directory node.

Kept apart from :mod:`peerpool.joinmarket.server_core` (the logic) so that the
knobs an operator tunes and the numbers they watch are in one short file.
"""

from __future__ import annotations

import enum
import re
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
    def is_closing(self) -> bool: ...
    def get_write_buffer_size(self) -> int: ...


class PeerState(enum.Enum):
    HANDSHAKE = 0
    AUTHENTICATING = 1
    READY = 2
    CLOSED = 3


MiB = 1024 * 1024


@dataclass
class ServerConfig:
    """The operator's knobs. Defaults follow joinmarket-ng 0.37's directory where
    its clients depend on them (rate limits, heartbeat), as measured in issue 8."""

    network: str
    motd: str = "peerpool JoinMarket directory"
    directory_id: str | None = None  # nick auth is offered when set (JMP-0005)
    # with a directory id: refuse peers that do not prove their nick (code "policy");
    # without, unproven peers are served but a proven owner displaces them
    require_verified: bool = False
    nick_auth_timeout: float = 20.0  # a proof later than this is "expired"
    max_line: int = MAX_LINE_BYTES
    max_peers: int = 10_000
    rate: float = 500.0  # lines per second per connection, sustained (joinmarket-ng)
    burst: float = 1000.0  # lines a connection may send at once (joinmarket-ng)
    # lines over the rate are dropped; None never disconnects for it (joinmarket-ng)
    max_rate_violations: int | None = None
    max_write_buffer: int = 8 * MiB  # a reader slower than this is cut
    # all connections' queued output together; over it, the largest backlogs
    # (peers that do not read) are cut until the total is under 3/4 of it
    max_queued_total: int = 256 * MiB
    # relayed lines are written at most once per flush_interval s per recipient:
    # at 1,000 peers and 2,000 msg/s, writing every loop turn costs more in
    # syscalls (ours and the recipients') than the few ms of batching add
    flush_interval: float = 0.01
    handshake_timeout: float = 30.0
    # heartbeat as joinmarket-ng: after idle_ping s of silence a ping-capable
    # peer is pinged and any other is probed with a unicast !orderbook (which a
    # maker answers); after idle_timeout s of silence the peer is evicted
    idle_ping: float = 600.0
    idle_timeout: float = 1500.0


@dataclass
class ServerStats:
    accepted: int = 0
    rejected: int = 0
    public_relayed: int = 0
    public_deliveries: int = 0
    private_relayed: int = 0
    locations_forwarded: int = 0
    dropped_spoofed: int = 0
    dropped_no_recipient: int = 0
    dropped_rate: int = 0
    dropped_unknown: int = 0
    nick_auth_verified: int = 0
    nick_auth_failed: int = 0  # malformed, invalid, expired and policy results
    displaced: int = 0  # unverified holders of a nick cut when its owner proved it
    closed_bad_input: int = 0
    closed_slow: int = 0
    closed_budget: int = 0  # cut to keep the server-wide output budget
    closed_idle: int = 0
    departures_sent: int = 0  # departure entries broadcast (in coalesced lines)
    writes: int = 0  # transport writes (one per recipient per flush, not per line)


class Conn:
    """One connection's state, keyed by identity (the object) in the core."""

    __slots__ = (
        "addr",
        "auth_deadline",
        "challenge",
        "features",
        "handshake_line",
        "last_refill",
        "last_seen",
        "lines",
        "location",
        "location_frames",
        "nick",
        "opened",
        "pinged",
        "queued",
        "state",
        "tokens",
        "verified",
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
        self.location_frames: dict[bool, bytes] | None = None
        self.features: frozenset[str] = frozenset()
        self.handshake_line = ""
        self.challenge: NickAuthChallenge | None = None
        self.auth_deadline = 0.0
        self.verified = False
        self.tokens = burst
        self.last_refill = now
        self.last_seen = now
        self.opened = now
        self.pinged = False
        self.violations = 0
        self.queued = 0  # write buffer size when last looked at (budget bookkeeping)

    @property
    def closed(self) -> bool:
        """The core closed this connection (a handler may do so mid-read: a
        property, so that a type checker does not keep an earlier narrowing
        of ``state`` across the call)."""
        return self.state is PeerState.CLOSED

    def entry(self, disconnected: bool = False) -> PeerEntry:
        return PeerEntry(self.nick, self.location, disconnected, self.features)


# ASCII digits only: str.isdigit() is true for '²' and for 5,000-digit strings,
# which int() then refuses (ValueError)
_PORT = re.compile(r"[0-9]{1,5}")
_HOST = re.compile(r"[A-Za-z0-9.\-\[\]:_]+")


def valid_location(location: str) -> bool:
    if location == NOT_SERVING_ONION:
        return True
    if len(location) > MAX_LOCATION:
        return False
    host, sep, port = location.rpartition(":")
    return (
        bool(sep)
        and _HOST.fullmatch(host) is not None
        and _PORT.fullmatch(port) is not None
        and 0 < int(port) < 65536
    )
