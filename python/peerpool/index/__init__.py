"""Indexing: chunks parsed into columns in Rust (:mod:`peerpool.index.parse`),
spread over workers (:mod:`peerpool.index.executors`: a local process pool,
or Dask across machines), written into an LMDB index with reorgs undone
(:mod:`peerpool.index.store`, ``peerpool index``)."""

from peerpool.index.parse import COLUMNS, Columns, parse_block, parse_chunk

__all__ = ["COLUMNS", "Columns", "parse_block", "parse_chunk"]
