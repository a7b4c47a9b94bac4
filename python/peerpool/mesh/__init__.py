"""peerpool.mesh: a libp2p node (rust-libp2p in the Rust core) driven from asyncio.

Wire-compatible with the go-libp2p agent networks: TCP+Noise+yamux and QUIC,
identify, ping, direct messages on ``/unaiverse/chat/1.0.0``, gossipsub and
floodsub, relay v2, raw request/response. The mesh guide (docs/mesh.md) and
the docstrings document the API.
"""

from .events import (
    DirectMessage,
    MeshEvent,
    MessagesDropped,
    PeerConnected,
    PeerDisconnected,
    PeerInfo,
    TopicMessage,
)
from .identity import Identity
from .node import MeshNode

__all__ = [
    "DirectMessage",
    "Identity",
    "MeshEvent",
    "MeshNode",
    "MessagesDropped",
    "PeerConnected",
    "PeerDisconnected",
    "PeerInfo",
    "TopicMessage",
]
