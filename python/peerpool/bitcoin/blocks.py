"""Blocks as transactions: offsets, chunks, txids and merkle roots.

The work is done by the Rust kernels; this module gives them their public
names and adds the checks built from them.

* :func:`tx_offsets` - start offset of every transaction of a whole block.
* :class:`TxScanner` - the same, resumable, fed in pieces of any size.
* :class:`BlockChunker` - cuts a block, fed as it arrives, into :class:`Chunk`
  objects of whole transactions (``block_hash``, ``chunk_num``, ``num_chunks``,
  ``start``, ``data``, ``tx_offsets``, ``first_tx_index``; ``txids()``).
* :func:`block_txids`, :func:`transaction_txids`, :func:`merkle_root`.

Offsets are from the block's first byte; ``chunk.data`` starts at the chunk's
first transaction (``chunk.start``), so transaction *i* of a chunk is
``chunk.data[off[i] - chunk.start : off[i+1] - chunk.start]``.

``chunk.data`` is a read-only memoryview of the buffer the bytes arrived in
(no copy). Once a chunk and its views are gone its buffer is kept for the
next chunk, at most two buffers in all; :func:`release_chunk_buffers` frees
those.
"""

from __future__ import annotations

import numpy as np

from peerpool._core import (
    BlockChunker,
    Chunk,
    TxScanner,
    block_txids,
    merkle_root,
    release_chunk_buffers,
    transaction_txids,
    tx_offsets,
)

DEFAULT_CHUNK_SIZE = 32 << 20
"""The default chunk size of ``BlockChunker``: 32 MiB of whole transactions."""


def merkle_root_matches(block: bytes, *, allow_witness: bool = True) -> bool:
    """Rebuild the merkle root from the offsets the scanner finds and compare it
    with the one in the header: the end-to-end check of the offsets."""
    _, txids = block_txids(block, allow_witness)
    return merkle_root(txids) == bytes(block[36:68])


def chunk_txids(chunks: list[Chunk]) -> np.ndarray:
    """Txids of a block's transactions gathered from all its chunks, in order."""
    if not chunks:
        return np.empty((0, 32), dtype=np.uint8)
    return np.concatenate([c.txids() for c in chunks])


def hash_hex(block_hash: bytes) -> str:
    """A hash as people show it: byte-reversed hex."""
    return bytes(block_hash)[::-1].hex()


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "BlockChunker",
    "Chunk",
    "TxScanner",
    "block_txids",
    "chunk_txids",
    "hash_hex",
    "merkle_root",
    "merkle_root_matches",
    "release_chunk_buffers",
    "transaction_txids",
    "tx_offsets",
]
