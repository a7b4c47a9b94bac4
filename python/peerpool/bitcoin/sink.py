"""``FileSink``: downloaded blocks on disk as chunks with their offsets, resumable.

Layout under the sink's folder::

    index.jsonl                    one line per complete block (hash, height,
                                   size, tx_count, num_chunks, header)
    <hash>/chunk_00000.npy         chunk data (uint8): whole transactions
    <hash>/chunk_00000.offsets.npy where each transaction starts, from the
                                   block's first byte (uint64)

A SMALL block is stored as one chunk. A block is written into
``<hash>.partial/``, its files fsynced, the folder renamed to ``<hash>/``,
and only then its index line appended and fsynced: the index never names a
block that is not whole on disk. On open, a torn last index line is cut off
and any folder the index does not name (a partial block, or one renamed just
before a crash) is removed, so a stopped download resumes by fetching exactly
the blocks the index lacks.

:func:`verify_stored_block` rebuilds a stored block's merkle root from its
chunk files, slicing every transaction out by its offset.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from peerpool.bitcoin.blocks import Chunk, hash_hex, merkle_root
from peerpool.bitcoin.client import BitcoinClient
from peerpool.bitcoin.received import Block
from peerpool.encoding import sha256d
from peerpool.errors import InputError

INDEX_NAME = "index.jsonl"
_PARTIAL = ".partial"


@dataclass(frozen=True)
class StoredBlock:
    """One index line."""

    hash: str  # displayed (byte-reversed) hex
    height: int | None
    size: int
    tx_count: int
    num_chunks: int
    header: str  # hex of the 80 bytes


class FileSink:
    """A :class:`~peerpool.bitcoin.download.BlockSink` writing to ``folder``.

    ``height_of`` (for example ``HeadersStore.height_of``) fills the index's
    height field when given.
    """

    def __init__(
        self, folder: str | Path, height_of: Callable[[bytes], int | None] | None = None
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.height_of = height_of
        self.index: dict[str, StoredBlock] = {}
        self._next_chunk: dict[bytes, int] = {}
        self._lock = asyncio.Lock()
        self._recover()

    # --- opening ------------------------------------------------------------------

    def _recover(self) -> None:
        path = self.folder / INDEX_NAME
        if path.exists():
            data = path.read_bytes()
            entries, good = _parse_index(data)
            self.index = {e.hash: e for e in entries}
            if good < len(data):  # a torn or corrupt tail: those blocks come again
                with path.open("r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
        for child in self.folder.iterdir():
            if child.is_dir() and child.name not in self.index:
                shutil.rmtree(child)

    # --- queries --------------------------------------------------------------------

    def has(self, block_hash: bytes) -> bool:
        return hash_hex(block_hash) in self.index

    def __len__(self) -> int:
        return len(self.index)

    # --- the BlockSink protocol ------------------------------------------------------------

    async def on_chunk(self, chunk: Chunk, client: BitcoinClient | None = None) -> None:
        expected = self._next_chunk.get(chunk.block_hash, 0)
        if chunk.chunk_num != expected:
            raise InputError(f"chunk {chunk.chunk_num} of a block where {expected} was next")
        if expected == 0:
            await asyncio.to_thread(self._fresh_partial, chunk.block_hash)
        self._next_chunk[chunk.block_hash] = expected + 1
        await asyncio.to_thread(
            self._write_chunk, chunk.block_hash, chunk.chunk_num, chunk.data, chunk.tx_offsets
        )

    async def on_block(self, block: Block, client: BitcoinClient | None = None) -> None:
        if block.raw is not None:  # SMALL: one chunk, from its first transaction
            await asyncio.to_thread(self._fresh_partial, block.hash)
            first = int(block.tx_offsets[0]) if len(block.tx_offsets) else len(block.raw)
            data = memoryview(block.raw)[first:]
            await asyncio.to_thread(self._write_chunk, block.hash, 0, data, block.tx_offsets)
            num_chunks = 1
        else:
            num_chunks = self._next_chunk.pop(block.hash, 0)
            if num_chunks != block.num_chunks:
                raise InputError(
                    f"block {block.hash_hex}: {num_chunks} of {block.num_chunks} chunks"
                )
        entry = StoredBlock(
            hash=block.hash_hex,
            height=self.height_of(block.hash) if self.height_of else None,
            size=block.size,
            tx_count=block.tx_count,
            num_chunks=num_chunks,
            header=block.header.hex(),
        )
        async with self._lock:  # one index writer at a time
            await asyncio.to_thread(self._commit, block.hash, entry)
        self.index[entry.hash] = entry

    async def on_abort(self, block_hash: bytes) -> None:
        self._next_chunk.pop(block_hash, None)
        await asyncio.to_thread(shutil.rmtree, self._partial(block_hash), True)

    # --- files ------------------------------------------------------------------------------

    def _partial(self, block_hash: bytes) -> Path:
        return self.folder / (hash_hex(block_hash) + _PARTIAL)

    def _fresh_partial(self, block_hash: bytes) -> None:
        partial = self._partial(block_hash)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()

    def _write_chunk(
        self, block_hash: bytes, num: int, data: bytes | memoryview, offsets: np.ndarray
    ) -> None:
        partial = self._partial(block_hash)
        for name, array in (
            (f"chunk_{num:05d}.npy", np.frombuffer(data, dtype=np.uint8)),
            (f"chunk_{num:05d}.offsets.npy", np.asarray(offsets, dtype=np.uint64)),
        ):
            with (partial / name).open("wb") as f:
                np.save(f, array)
                f.flush()
                os.fsync(f.fileno())

    def _commit(self, block_hash: bytes, entry: StoredBlock) -> None:
        final = self.folder / hash_hex(block_hash)
        if final.exists():  # stored before, yet not indexed: replaced by this copy
            shutil.rmtree(final)
        os.replace(self._partial(block_hash), final)
        _fsync_dir(self.folder)
        with (self.folder / INDEX_NAME).open("ab") as f:
            f.write(json.dumps(asdict(entry), separators=(",", ":")).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading back ----------------------------------------------------------------------


def iter_stored_chunks(
    folder: str | Path, entry: StoredBlock
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(data, offsets) of each chunk of a stored block, in order."""
    block_dir = Path(folder) / entry.hash
    for num in range(entry.num_chunks):
        data = np.load(block_dir / f"chunk_{num:05d}.npy", mmap_mode="r")
        offsets = np.load(block_dir / f"chunk_{num:05d}.offsets.npy")
        yield data, offsets


def verify_stored_block(folder: str | Path, entry: StoredBlock) -> bool:
    """True when the transactions cut out of the chunk files by their offsets
    hash (double SHA-256, hashlib) to the merkle root in the stored header,
    cover the block exactly, and the header hashes to the stored hash."""
    txids: list[bytes] = []
    header = bytes.fromhex(entry.header)
    position = None
    for data, offsets in iter_stored_chunks(folder, entry):
        if not len(offsets):
            continue  # an empty chunk: one transaction larger than the chunk size
        start = int(offsets[0])
        if position is not None and start != position:
            return False  # a gap or an overlap between chunks
        ends = [*offsets[1:].tolist(), start + len(data)]
        raw = data.tobytes()
        for begin, end in zip(offsets.tolist(), ends, strict=True):
            txids.append(sha256d(raw[begin - start : end - start]))
        position = start + len(data)
    if position != entry.size or len(txids) != entry.tx_count or not txids:
        return False
    root = merkle_root(np.frombuffer(b"".join(txids), dtype=np.uint8).reshape(-1, 32))
    return root == header[36:68] and sha256d(header)[::-1].hex() == entry.hash


def read_index(folder: str | Path) -> list[StoredBlock]:
    """The stored blocks, in the order they were completed (read only: a
    torn tail is skipped, not cut)."""
    path = Path(folder) / INDEX_NAME
    return _parse_index(path.read_bytes())[0] if path.exists() else []


def _parse_index(data: bytes) -> tuple[list[StoredBlock], int]:
    """The entries of the good prefix of an index file, and its length in bytes."""
    entries: list[StoredBlock] = []
    good = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            entries.append(StoredBlock(**json.loads(line)))
        except (ValueError, TypeError):
            break
        good += len(line)
    return entries, good
