"""The block a connection hands to the application, and its kind.

Its own module so that the sans-I/O protocol core
(:mod:`peerpool.bitcoin.protocol`), which builds these, and the application
layer (:mod:`peerpool.bitcoin.handlers`, the client, the sinks), which
receives them, both import it without importing each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from peerpool.bitcoin.blocks import hash_hex

__all__ = ["Block", "BlockKind"]


class BlockKind(enum.Enum):
    """SMALL: the whole raw block is in memory (``Block.raw``). LARGE: it was
    at least ``large_message_limit`` bytes and came as chunks; ``raw`` is None."""

    SMALL = "small"
    LARGE = "large"


@dataclass(frozen=True, eq=False)
class Block:
    """A block received from a peer.

    ``tx_offsets`` holds the start of every transaction from the block's first
    byte (uint64), for SMALL and LARGE blocks alike. ``num_chunks`` is how many
    ``on_block_chunk`` calls came before (0 for a SMALL block).
    """

    kind: BlockKind
    hash: bytes  # internal byte order
    header: bytes
    size: int
    tx_count: int
    tx_offsets: npt.NDArray[np.uint64]
    num_chunks: int = 0
    raw: bytes | None = None

    @property
    def hash_hex(self) -> str:
        """The block hash as explorers display it (byte-reversed hex)."""
        return hash_hex(self.hash)

    @property
    def prev_hash(self) -> bytes:
        """The previous block's hash, from the header (internal byte order)."""
        return self.header[4:36]

    @property
    def merkle_root(self) -> bytes:
        """The merkle root from the header (internal byte order)."""
        return self.header[36:68]

    def __repr__(self) -> str:
        return (
            f"Block({self.kind.name}, {self.hash_hex}, {self.size} bytes, "
            f"{self.tx_count} txs, {self.num_chunks} chunks)"
        )
