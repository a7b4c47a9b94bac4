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
from dataclasses import dataclass, replace
from pathlib import Path

from peerpool.bitcoin.blocks import hash_hex
from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.networks import Network
from peerpool.bitcoin.sink import StoredBlock, read_index
from peerpool.errors import BlockMissingError
from peerpool.index.executors import Executor, OrderedRunner
from peerpool.index.store import BlockBatch, IndexedTip, IndexStore
from peerpool.index.work import ChunkResult, ChunkTask, index_chunk, index_chunks

DEFAULT_IN_FLIGHT = 4
#: small blocks' chunks go to a worker together, up to this many bytes or chunks
BATCH_BYTES = 8 << 20
BATCH_CHUNKS = 256
#: entries written before a commit (one fsync) when blocks are small
COMMIT_BYTES = 16 << 20


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
            runner = OrderedRunner(self.executor, index_chunks, self.max_in_flight)
            writer = _BlockWriter(self.store, self.on_block)
            height, batch, batch_bytes = start, [], 0
            try:
                for height in range(start, headers.height + 1):
                    block_hash = headers.hash_at(height)
                    entry = stored.get(hash_hex(block_hash)) if block_hash else None
                    if block_hash is None or entry is None:
                        break
                    writer.expect(height, entry)
                    for num in range(entry.num_chunks):
                        batch.append(
                            ChunkTask.stored(
                                blocks_dir, height, block_hash, num, entry.num_chunks, witness
                            )
                        )
                        batch_bytes += entry.size // entry.num_chunks
                        if batch_bytes >= BATCH_BYTES or len(batch) >= BATCH_CHUNKS:
                            writer.take(runner.put(batch))
                            batch, batch_bytes = [], 0
                else:
                    height = headers.height + 1
                if batch:
                    writer.take(runner.put(batch))
                writer.take(list(runner.drain()))
            except BaseException:
                writer.stop()
                raise
            writer.finish()
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
            parts = []
            for n in range(entry.num_chunks):
                task = ChunkTask.stored(folder, tip.height, tip.hash, n, entry.num_chunks, witness)
                parts.append(index_chunk(replace(task, entries=False)).columns or {})
            self.store.remove_block(tip.height, parts)
            undone += 1
        return undone


class _BlockWriter:
    """Adds each chunk's entries to an open LMDB transaction as it arrives (in
    block order) and moves the tip at each block's end. Commits: before and
    after a block of several chunks (so a failure mid-block loses that block
    only), after ``COMMIT_BYTES`` of entries, and at the end (small blocks
    share a commit and its fsync)."""

    def __init__(self, store: IndexStore, on_block: Callable[[int, int], None] | None) -> None:
        self.store = store
        self.on_block = on_block
        self._sizes: dict[int, int] = {}
        self._batch: BlockBatch | None = None
        self._partial = False
        self.blocks = self.transactions = self.bytes = 0

    def expect(self, height: int, entry: StoredBlock) -> None:
        self._sizes[height] = entry.size

    def take(self, results: list[list[ChunkResult | Exception]]) -> None:
        for group in results:
            for result in group:
                if isinstance(result, Exception):
                    raise result
                self._take_one(result)

    def _take_one(self, result: ChunkResult) -> None:
        large = result.num_chunks > 1
        if self._batch is None:
            self._batch = BlockBatch(self.store)
        elif large and result.chunk_num == 0 and self._batch.blocks:
            self._commit()
        assert result.entries is not None
        self._partial = True
        self._batch.add(result.height, result.entries)
        self.transactions += result.transactions
        if result.chunk_num + 1 < result.num_chunks:
            return
        self._batch.end_block(result.height, result.block_hash)
        self._partial = False
        size = self._sizes.pop(result.height, 0)
        self.blocks += 1
        self.bytes += size
        if large or self._batch.bytes >= COMMIT_BYTES:
            self._commit()
        if self.on_block is not None:
            self.on_block(result.height, size)

    def _commit(self) -> None:
        assert self._batch is not None
        self._batch.commit()

    def stop(self) -> None:
        """After a failure: keep the whole blocks, drop a partial one."""
        if self._batch is None:
            return
        if self._partial:
            self._batch.abort()
        else:
            self._batch.commit()
            self._batch.abort()
        self._batch = None

    def finish(self) -> None:
        if self._batch is not None:
            self._batch.commit()
            self._batch.abort()
            self._batch = None
