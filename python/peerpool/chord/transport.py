"""What the DHT node needs from the mesh: the shape of MeshNode it uses.

``peerpool.mesh.MeshNode`` is the real one (identity, Noise encryption and
connections from rust-libp2p; the ring protocol is a request/response
protocol of ours on it). Anything with these members works, which is how the
state machine is unit-tested over an in-process fake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

#: The ring protocol's name on the mesh node (MeshNode(request_protocols=...)).
PROTOCOL = "/peerpool/chord/1.0.0"
"""The ring protocol's name: give it to ``MeshNode(request_protocols=...)``."""

Handler = Callable[[str, bytes], Awaitable[bytes]]


@runtime_checkable
class Transport(Protocol):
    """What a :class:`~peerpool.chord.ChordNode` needs of its transport: a
    started :class:`~peerpool.mesh.MeshNode` has all of it (and the node was
    made with ``request_protocols=(PROTOCOL,)``)."""

    @property
    def peer_id(self) -> str:
        """This node's id on the transport (the ring id is derived from it)."""

    @property
    def listen_addrs(self) -> list[str]:
        """Addresses other nodes can dial to reach this one."""

    def is_connected(self, peer_id: str) -> bool:
        """True while a connection to ``peer_id`` is up."""

    async def dial(self, addrs: str | Sequence[str], *, timeout: float = 10.0) -> Any:
        """Connect; the result has the remote ``peer_id`` (MeshNode gives a PeerInfo)."""

    async def request(
        self, peer_id: str, protocol: str, payload: bytes, *, timeout: float = 5.0
    ) -> bytes:
        """Send ``payload`` to ``peer_id`` on ``protocol`` and return the answer;
        any failure raises (MeshNode: :class:`~peerpool.errors.MeshRequestError`)."""

    def set_request_handler(self, protocol: str, handler: Handler) -> None:
        """Answer requests on ``protocol`` with ``await handler(peer_id, payload)``."""


@runtime_checkable
class Disconnecting(Protocol):
    """Transports that can drop a connection (MeshNode can): disconnect_least_efficient uses it."""

    async def disconnect(self, peer_id: str) -> None: ...


@runtime_checkable
class ListsPeers(Protocol):
    """Transports that list their connections (MeshNode does): routing hops that
    are not fingers or successors are disconnected once idle."""

    def peers(self) -> Sequence[Any]:
        """Objects with ``peer_id`` and ``direction`` ("inbound"/"outbound")."""


@runtime_checkable
class HasEvents(Protocol):
    """MeshNode's event queue: bounded, so someone must read it or the swarm waits."""

    async def next_events(
        self, max_events: int = 1024, timeout: float | None = None
    ) -> list[Any]: ...
