"""``ProtocolConfig``: what a connection announces and what it accepts.

The settings and their defaults, apart from the state machine that enforces
them (:mod:`peerpool.bitcoin.protocol`): the client, the manager, the sync
command and the sinks build a config without needing the protocol core, and
its size limits read here in one place with where each comes from. Import it
from :mod:`peerpool.bitcoin.protocol` as before; this module is its home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from peerpool import __version__
from peerpool.bitcoin.blocks import DEFAULT_CHUNK_SIZE
from peerpool.bitcoin.messages.bsv import MIN_MAX_RECV_PAYLOAD_LENGTH
from peerpool.errors import InputError

__all__ = [
    "DEFAULT_LARGE_MESSAGE_LIMIT",
    "DEFAULT_MAX_BLOCK_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ProtocolConfig",
]

#: Blocks of this size or more are streamed as chunks (the issue's default, and
#: the BSV node's own large-message piece size).
DEFAULT_LARGE_MESSAGE_LIMIT: Final = 32 << 20
#: Largest non-block message read whole (a huge BSV transaction fits); also
#: what we advertise in protoconf. BSV's consensus limit for a transaction after
#: Genesis is 1 GB; 256 MiB keeps a misbehaving peer's cost per connection bounded.
DEFAULT_MAX_MESSAGE_SIZE: Final = 256 << 20
#: Largest block accepted: the regtest node's -excessiveblocksize (10 GB).
DEFAULT_MAX_BLOCK_SIZE: Final = 10_000_000_000


@dataclass(frozen=True)
class ProtocolConfig:
    """What we announce and what we accept. Sizes are payload bytes."""

    user_agent: str = f"/peerpool:{__version__}/"
    services: int = 0  # we serve nothing
    start_height: int = 0
    relay: bool = True  # BIP37: ask the peer to announce transactions
    large_message_limit: int = DEFAULT_LARGE_MESSAGE_LIMIT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE
    chunk_size: int = DEFAULT_CHUNK_SIZE
    send_headers: bool = False  # BIP130: ask for new blocks as headers instead of inv
    wtxid_relay: bool = False  # BIP339 (BTC only): announce transactions by wtxid

    def __post_init__(self) -> None:
        if self.large_message_limit < 1:
            raise InputError("large_message_limit must be positive")
        if self.max_message_size < MIN_MAX_RECV_PAYLOAD_LENGTH:
            # a smaller value cannot be advertised in protoconf
            raise InputError(f"max_message_size must be >= {MIN_MAX_RECV_PAYLOAD_LENGTH}")
        if self.max_block_size < 81 or self.chunk_size < 1:
            raise InputError("max_block_size and chunk_size must be positive")
