"""Indexing synced blocks: the best chain of the header store, block by block,
from the chunks a :class:`~peerpool.bitcoin.sink.FileSink` stored.

1. While the indexed tip is not on the header store's best chain (a reorg
   happened since), the tip block is undone: parsed again from its stored
   chunks, its entries removed, the tip moved to its parent.
2. Then each next block of the best chain that is stored is indexed: its
   chunks go to the workers through an :class:`OrderedRunner` (at most K in
   flight), the columns come back in block order, and a block is written, with
   the new tip, in one transaction once all its chunks are in.

It stops at the first best-chain block not yet downloaded; run it again after
the next ``peerpool sync``. A kill at any point resumes from the indexed tip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peerpool.bitcoin.blocks import hash_hex
from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.networks import Network
from peerpool.bitcoin.sink import StoredBlock, read_index
from peerpool.errors import BlockMissingError
from peerpool.index.executors import Executor, OrderedRunner
from peerpool.index.store import IndexedTip, IndexStore
from peerpool.index.work import ChunkResult, ChunkTask, index_chunk

DEFAULT_IN_FLIGHT = 4


@dataclass(frozen=True)
class IndexReport:
    indexed: int  # blocks added
    undone: int  # blocks removed by reorgs
    tip: IndexedTip | None
    transactions: int
    bytes: int
    seconds: float
    resubmitted: int  # chunks run again after a worker died
    behind: int  # best-chain blocks not downloaded yet


class Indexer:
    def __init__(
        self,
        store: IndexStore,
        executor: Executor,
        max_in_flight: int = DEFAULT_IN_FLIGHT,
        on_block: Callable[[int, int], None] | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.max_in_flight = max_in_flight
        self.on_block = on_block  # (height, bytes) after each block written

    def run(self, data: Path, network: Network) -> IndexReport:
        started = time.monotonic()
        blocks_dir = data / f"blocks.{network.name}"
        stored = {e.hash: e for e in read_index(blocks_dir)}
        witness = not network.is_bsv
        with HeadersStore(data / f"headers.{network.name}", network) as headers:
            undone = self._undo_stale(headers, stored, blocks_dir, witness)
            tip = self.store.tip
            start = 0 if tip is None else tip.height + 1
            runner = OrderedRunner(self.executor, index_chunk, self.max_in_flight)
            writer = _BlockWriter(self.store, self.on_block)
            height = start
            for height in range(start, headers.height + 1):
                block_hash = headers.hash_at(height)
                entry = stored.get(hash_hex(block_hash)) if block_hash else None
                if block_hash is None or entry is None:
                    break
                writer.expect(height, entry)
                for num in range(entry.num_chunks):
                    task = ChunkTask.stored(
                        blocks_dir, height, block_hash, num, entry.num_chunks, witness
                    )
                    for result in runner.put(task):
                        writer.take(result)
            else:
                height = headers.height + 1
            for result in runner.drain():
                writer.take(result)
            behind = headers.height + 1 - height
        return IndexReport(
            indexed=writer.blocks,
            undone=undone,
            tip=self.store.tip,
            transactions=writer.transactions,
            bytes=writer.bytes,
            seconds=time.monotonic() - started,
            resubmitted=runner.resubmitted,
            behind=behind,
        )

    def _undo_stale(
        self, headers: HeadersStore, stored: dict[str, StoredBlock], folder: Path, witness: bool
    ) -> int:
        undone = 0
        while (tip := self.store.tip) is not None and not headers.is_on_best_chain(tip.hash):
            entry = stored.get(hash_hex(tip.hash))
            if entry is None:
                raise BlockMissingError(
                    f"block {hash_hex(tip.hash)} at height {tip.height} left the best chain, "
                    f"but it is not in {folder} to be undone"
                )
            parts = [
                index_chunk(
                    ChunkTask.stored(folder, tip.height, tip.hash, n, entry.num_chunks, witness)
                ).columns
                for n in range(entry.num_chunks)
            ]
            self.store.remove_block(tip.height, parts)
            undone += 1
        return undone


class _BlockWriter:
    """Collects each block's chunk results (they arrive in order) and writes
    the block when the last is in."""

    def __init__(self, store: IndexStore, on_block: Callable[[int, int], None] | None) -> None:
        self.store = store
        self.on_block = on_block
        self._sizes: dict[int, int] = {}
        self._parts: list[dict[str, Any]] = []
        self.blocks = self.transactions = self.bytes = 0

    def expect(self, height: int, entry: StoredBlock) -> None:
        self._sizes[height] = entry.size

    def take(self, result: ChunkResult) -> None:
        self._parts.append(result.columns)
        if result.chunk_num + 1 < result.num_chunks:
            return
        parts, self._parts = self._parts, []
        self.store.add_block(result.height, result.block_hash, parts)
        size = self._sizes.pop(result.height, 0)
        self.blocks += 1
        self.bytes += size
        self.transactions += sum(len(p["tx_offset"]) for p in parts)
        if self.on_block is not None:
            self.on_block(result.height, size)
