"""Transactions into columns: the parsing kernel an indexer runs per chunk.

:func:`parse_block` takes a whole block, :func:`parse_chunk` a
:class:`~peerpool.bitcoin.Chunk` (read in place, no copy) or bytes with the
absolute offsets of the transactions they hold. Both run in Rust with the GIL
released and return a :class:`Columns`, read like a dict of numpy arrays
(``cols["tx_txid"]``; a column is handed over to numpy on its first access,
without a copy when it is large, and every access returns that same
read-only array: ``.copy()`` it to write to it; ``cols.to_dict()`` gives all
of them, to pickle or send elsewhere; ``cols.counts`` the row counts):

=====================  ===========  =================================================
key                    dtype        what
=====================  ===========  =================================================
``tx_txid``            (n, 32) u8   txid in internal byte order (witness left out)
``tx_offset``          u64          where the transaction starts in the block
``tx_size``            u64          its size in bytes (with witness)
``out_tx``             u64          row of the output's transaction in ``tx_*``
``out_index``          u32          output index in its transaction
``out_value``          i64          value in satoshis
``out_script_offset``  u64          where the output script starts in the block
``out_script_len``     u64          its length
``out_script_hash``    (m, 32) u8   SHA-256 of the script (Electrum's script hash,
                                    shown byte-reversed)
``in_tx``              u64          row of the input's transaction
``in_index``           u32          input index in its transaction
``in_prev_txid``       (k, 32) u8   the spent output's txid
``in_prev_index``      u32          and its index
``in_coinbase``        bool         the coinbase input (the only input, null outpoint)
=====================  ===========  =================================================

A transaction's index in the block is the chunk's ``first_tx_index`` plus its
row. Malformed bytes raise the same :class:`~peerpool.errors.BlockFormatError`
subclasses, at the same offsets, as :func:`~peerpool.bitcoin.tx_offsets`;
offsets that do not delimit the data raise
:class:`~peerpool.errors.ChunkOffsetsError`.
"""

from __future__ import annotations

from peerpool._core import Columns, parse_block, parse_chunk

COLUMNS = (
    "tx_txid",
    "tx_offset",
    "tx_size",
    "out_tx",
    "out_index",
    "out_value",
    "out_script_offset",
    "out_script_len",
    "out_script_hash",
    "in_tx",
    "in_index",
    "in_prev_txid",
    "in_prev_index",
    "in_coinbase",
)
"""The names of the columns ``parse_block`` and ``parse_chunk`` return (see the module docstring)."""


__all__ = ["COLUMNS", "Columns", "parse_block", "parse_chunk"]
