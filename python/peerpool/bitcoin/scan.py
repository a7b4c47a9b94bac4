"""``peerpool scan``: read block files and check each block through the
streaming path a peer connection uses (the chunk splitter fed in socket-sized
pieces), reporting hash, size, transaction count, chunks and whether the merkle
root rebuilt from the found offsets matches the header."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from peerpool.bitcoin.blockfile import iter_blocks
from peerpool.bitcoin.blocks import BlockChunker, Chunk, chunk_txids, hash_hex, merkle_root
from peerpool.errors import BlockFormatError

#: Pieces the size of a typical socket read.
PIECE_SIZE = 64 << 10


@dataclass(frozen=True)
class BlockReport:
    path: Path
    block_hash: str
    size: int
    tx_count: int
    num_chunks: int
    merkle_ok: bool


def scan_block(
    data: memoryview | bytes, chunk_size: int, allow_witness: bool = True
) -> tuple[str, int, int, bool]:
    """Feed one block through the chunk splitter; returns (hash, tx count,
    chunks, merkle root matches)."""
    chunker = BlockChunker(len(data), chunk_size, allow_witness)
    chunks: list[Chunk] = []
    for pos in range(0, len(data), PIECE_SIZE):
        chunks.extend(chunker.feed(data[pos : pos + PIECE_SIZE]))
    header = chunker.header
    if header is None or chunker.block_hash is None or chunker.tx_count is None:
        raise BlockFormatError("block ended before its header and transaction count", 0)
    root_ok = merkle_root(chunk_txids(chunks)) == header[36:68]
    return hash_hex(chunker.block_hash), chunker.tx_count, len(chunks), root_ok


def scan_files(
    paths: Iterable[Path], chunk_size: int, show_progress: bool = True
) -> list[BlockReport]:
    paths = list(paths)
    total = sum(p.stat().st_size for p in paths)
    reports: list[BlockReport] = []
    with tqdm(
        total=total, unit="B", unit_scale=True, disable=not show_progress, desc="scan"
    ) as bar:
        for path in paths:
            for record in iter_blocks(path):
                block_hash, tx_count, n_chunks, ok = scan_block(record.data, chunk_size)
                report = BlockReport(path, block_hash, len(record.data), tx_count, n_chunks, ok)
                reports.append(report)
                bar.write(
                    f"{block_hash}  {report.size:>10,} B  {tx_count:>7,} tx  "
                    f"{n_chunks:>3} chunk(s)  merkle {'ok' if ok else 'MISMATCH'}"
                )
                bar.update(len(record.data) + 8)
    return reports


def run(paths: list[Path], chunk_size: int, show_progress: bool = True) -> int:
    started = time.perf_counter()
    reports = scan_files(paths, chunk_size, show_progress)
    elapsed = max(time.perf_counter() - started, 1e-9)
    size = sum(r.size for r in reports)
    bad = [r for r in reports if not r.merkle_ok]
    print(
        f"scanned {len(reports)} blocks, {sum(r.tx_count for r in reports):,} transactions, "
        f"{size:,} bytes in {elapsed:.3f} s ({size / elapsed / 1e6:.1f} MB/s); "
        f"merkle roots: {len(reports) - len(bad)} ok, {len(bad)} mismatched"
    )
    return 1 if bad else 0
