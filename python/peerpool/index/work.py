"""What a worker does with one chunk: parse it into columns (the Rust kernel,
GIL released) and hand back a plain dict of numpy arrays, which pickles
cheaply to the writer.

A task names its chunk in one of two ways: the chunk's bytes and offsets
(sent over; what a download hands on), or the two files a
:class:`~peerpool.bitcoin.sink.FileSink` stored it in (the worker reads them
itself, memory-mapped: the bytes never pass through the parent, which is
what lets workers on a machine that shares the data folder keep up).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from peerpool.errors import BlockFormatError, ChunkOffsetsError
from peerpool.index.parse import parse_chunk
from peerpool.index.store import Packed, block_entries


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of block ``height``: ``chunk_num`` of ``num_chunks``."""

    height: int
    block_hash: bytes
    chunk_num: int
    num_chunks: int
    data: bytes | None = None
    offsets: np.ndarray | None = None
    data_file: str | None = None
    offsets_file: str | None = None
    allow_witness: bool = True
    #: give the writer its LMDB entries (packed, sorted), not the columns
    entries: bool = False

    @classmethod
    def stored(
        cls, folder: Path, height: int, block_hash: bytes, num: int, of: int, witness: bool
    ) -> ChunkTask:
        block_dir = folder / block_hash[::-1].hex()
        return cls(
            height,
            block_hash,
            num,
            of,
            data_file=str(block_dir / f"chunk_{num:05d}.npy"),
            offsets_file=str(block_dir / f"chunk_{num:05d}.offsets.npy"),
            allow_witness=witness,
            entries=True,
        )

    def load(self) -> tuple[Any, np.ndarray]:
        if self.data is not None and self.offsets is not None:
            return self.data, self.offsets
        assert self.data_file is not None and self.offsets_file is not None
        return np.load(self.data_file, mmap_mode="r"), np.load(self.offsets_file)


@dataclass(frozen=True)
class ChunkResult:
    height: int
    block_hash: bytes
    chunk_num: int
    num_chunks: int
    transactions: int
    columns: dict[str, np.ndarray] | None = None
    entries: dict[str, Packed] | None = None


def index_chunk(task: ChunkTask) -> ChunkResult:
    """Parse one chunk. A malformed one raises its BlockFormatError (or
    ChunkOffsetsError) with the block and chunk named in the message."""
    data, offsets = task.load()
    try:
        cols = parse_chunk(
            data if isinstance(data, bytes) else memoryview(data), offsets, task.allow_witness
        )
    except (BlockFormatError, ChunkOffsetsError) as exc:
        where = (
            f"block {task.block_hash[::-1].hex()} at height {task.height}, chunk {task.chunk_num}"
        )
        raise type(exc)(f"{where}: {exc}", exc.offset) from None
    head = (task.height, task.block_hash, task.chunk_num, task.num_chunks, cols.counts[0])
    if task.entries:
        return ChunkResult(*head, entries=block_entries(task.height, cols))
    return ChunkResult(*head, columns=cols.to_dict())


def index_chunks(tasks: list[ChunkTask]) -> list[ChunkResult | Exception]:
    """Several chunks in one task: small blocks are batched so that a task's
    fixed cost (scheduling, a round trip) is paid once per batch. A chunk
    that fails ends the list with its error, after the results before it,
    so the writer keeps the blocks before a malformed one."""
    out: list[ChunkResult | Exception] = []
    for task in tasks:
        try:
            out.append(index_chunk(task))
        except (BlockFormatError, ChunkOffsetsError) as exc:
            out.append(exc)
            break
    return out
