"""JoinMarket: directory clients, pools of them, the taker's multi-directory client,
and a directory server, all speaking the onion message channel protocol.

The sans-I/O core (``wire``, ``identity``, ``messages``, ``nickauth``,
``peerlist``, ``offers``, ``protocol``) imports no asyncio; the asyncio classes
are imported lazily so that using the core does not pull in the transports.
"""

from __future__ import annotations

import importlib
from typing import Any

from peerpool.joinmarket.identity import NickIdentity
from peerpool.joinmarket.offers import Offer
from peerpool.joinmarket.protocol import DirectoryClientProtocol, NickAuthMode

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
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'peerpool.joinmarket' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
