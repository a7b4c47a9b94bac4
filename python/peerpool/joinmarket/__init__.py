"""JoinMarket: directory clients, pools of them, the taker's multi-directory client,
and a directory server, all speaking the onion message channel protocol.

The sans-I/O core (``wire``, ``identity``, ``messages``, ``nickauth``,
``peerlist``, ``offers``, ``protocol``) imports no asyncio; the asyncio classes
are imported lazily so that using the core does not pull in the transports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.offers import Offer
from peerpool.joinmarket.protocol import DirectoryClientProtocol, NickAuthMode
from peerpool.joinmarket.server_state import ServerConfig

if TYPE_CHECKING:  # the real classes for type checkers; at run time __getattr__ loads them
    from peerpool.joinmarket.client import DirectoryClient
    from peerpool.joinmarket.multi import MultiDirectoryClient
    from peerpool.joinmarket.pool import DirectoryClientPool
    from peerpool.joinmarket.server import DirectoryServer

_LAZY = {
    "DirectoryServer": "peerpool.joinmarket.server",
    "DirectoryClient": "peerpool.joinmarket.client",
    "DirectoryClientPool": "peerpool.joinmarket.pool",
    "MultiDirectoryClient": "peerpool.joinmarket.multi",
}

__all__ = [
    "DirectoryClient",
    "DirectoryClientPool",
    "DirectoryClientProtocol",
    "DirectoryServer",
    "MultiDirectoryClient",
    "NickAuthMode",
    "NickIdentity",
    "Offer",
    "ServerConfig",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'peerpool.joinmarket' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
