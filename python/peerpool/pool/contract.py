"""What a :class:`~peerpool.pool.ClientPool` expects of its clients, and what it reports.

The client contract (:class:`PoolClient`), kept to three coroutines so that a
JoinMarket directory client, a Bitcoin peer client or a ten-line test client
all fit:

``async connect()``
    Open the connection and finish any handshake. Return when the client is
    usable; raise (preferably a :class:`~peerpool.errors.DialError` or another
    :class:`~peerpool.errors.PeerpoolError`) when it is not. The pool bounds it
    with its connect timeout and cancels it on deadlines, so it must release
    what it opened when cancelled.
``async close()``
    Close the connection. Idempotent: the pool may call it on a client that
    already lost its connection, or that never finished ``connect()``.
``async wait_closed()``
    Return (or raise, with the reason) once the connection has ended, for
    whatever reason: closed by us, by the server, or broken. The pool awaits
    it to learn that a connection died, so it removes the client and fires
    ``on_disconnected`` without polling.

Every connection attempt gets a :class:`ConnectionId` before it is dialed
(the rust-libp2p habit), so the hooks ``on_dialing``, ``on_dial_failed``,
``on_connected`` and ``on_disconnected`` of one attempt can be correlated even
when a node is dialed, dropped and dialed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NewType, Protocol, runtime_checkable

from peerpool.net.address import Address

ConnectionId = NewType("ConnectionId", int)
"""The id a pool gives each connection attempt, before the dial (unique within the pool)."""


@runtime_checkable
class PoolClient(Protocol):
    """The three coroutines a pooled client provides (see the module docstring)."""

    async def connect(self) -> None:
        """Dial and handshake; return once the connection is usable, raise
        (a :class:`~peerpool.errors.PeerpoolError` subclass) on failure."""

    async def close(self) -> None:
        """End the connection; idempotent, and never raises for a connection already gone."""

    async def wait_closed(self) -> None:
        """Return once the connection has ended, for any reason (raising the
        cause, if any, is allowed: the pool records it)."""


@dataclass(frozen=True)
class ConnectionInfo:
    """One connection attempt: its id (allocated before the dial) and its server."""

    id: ConnectionId
    address: Address

    @property
    def node_id(self) -> str:
        """The server's canonical ``host:port`` (its key in the pool)."""
        return self.address.node_id

    def __str__(self) -> str:
        return f"#{self.id} {self.node_id}"


@dataclass
class ConnectOutcome:
    """What a bulk connect (parallel, retry, reconnect) achieved.

    ``connected``: every node connected when the call returned; ``new``: the
    ones this call connected; ``errors``: the last error of each node still
    missing that this call tried; ``deadline_hit``: the call stopped at its
    deadline with its target not reached.
    """

    connected: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)
    deadline_hit: bool = False
