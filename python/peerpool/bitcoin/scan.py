"""``peerpool scan``: read block files and check each block through the
streaming path a peer connection uses (the chunk splitter fed in socket-sized
pieces), reporting hash, size, transaction count, chunks and whether the merkle
root rebuilt from the found offsets matches the header."""

from __future__ import annotations

import argparse
import stat
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from peerpool.bitcoin.blockfile import iter_blocks
from peerpool.bitcoin.blocks import (
    DEFAULT_CHUNK_SIZE,
    BlockChunker,
    Chunk,
    chunk_txids,
    hash_hex,
    merkle_root,
)
from peerpool.cli_errors import CommandError
from peerpool.errors import BlockFormatError, PeerpoolError

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


def check_block_file(path: Path) -> int:
    """The size of ``path``; a CommandError naming it when it cannot be a block
    file. Checked before anything is read: a FIFO would block the open, and an
    empty file would otherwise scan as zero blocks without a word."""
    info = path.stat()  # FileNotFoundError and the like name the path themselves
    if stat.S_ISDIR(info.st_mode):
        raise CommandError(f"{path}: is a directory, not a block file")
    if stat.S_ISFIFO(info.st_mode):
        raise CommandError(f"{path}: is a FIFO; block files are memory-mapped, give a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise CommandError(f"{path}: not a regular file")
    if info.st_size == 0:
        raise CommandError(f"{path}: is empty (no blocks)")
    return info.st_size


def scan_files(
    paths: Iterable[Path], chunk_size: int, show_progress: bool = True
) -> list[BlockReport]:
    """Scan every block of ``paths``. The bar (on stderr) shows only on a
    terminal, so that lines written to a pipe or file never interleave with it;
    errors are CommandErrors naming the file (and the block's offset in it)."""
    paths = list(paths)
    sizes = [check_block_file(p) for p in paths]
    reports: list[BlockReport] = []
    # disable=None: tqdm turns itself off when stderr is not a terminal
    with tqdm(
        total=sum(sizes),
        unit="B",
        unit_scale=True,
        disable=None if show_progress else True,
        desc="scan",
        file=sys.stderr,
    ) as bar:
        for path, size in zip(paths, sizes, strict=True):
            done = 0  # bytes of this file the bar has counted
            try:
                for record in iter_blocks(path):
                    try:
                        block_hash, txs, n_chunks, ok = scan_block(record.data, chunk_size)
                    except PeerpoolError as exc:
                        raise CommandError(
                            f"{path}: block at offset {record.offset}: {type(exc).__name__}: {exc}"
                        ) from exc
                    report = BlockReport(path, block_hash, len(record.data), txs, n_chunks, ok)
                    reports.append(report)
                    _write(
                        bar,
                        f"{block_hash}  {report.size:>10,} B  {txs:>7,} tx  "
                        f"{n_chunks:>3} chunk(s)  merkle {'ok' if ok else 'MISMATCH'}",
                    )
                    # the record header (8 bytes in a blk file, none in a raw
                    # block) counts with the block it precedes
                    end = record.offset + len(record.data)
                    bar.update(end - done)
                    done = end
            except BlockFormatError as exc:  # from the file's layout: the path is in it
                raise CommandError(f"{type(exc).__name__}: {exc}") from exc
            bar.update(size - done)  # zero padding after the last record
    return reports


def _write(bar: Any, line: str) -> None:
    if bar.disable:
        print(line, flush=True)
    else:
        bar.write(line)


def run(paths: list[Path], chunk_size: int, show_progress: bool = True) -> int:
    if chunk_size <= 0:
        raise CommandError(f"--chunk-size must be positive, not {chunk_size}")
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


def _run_args(args: argparse.Namespace) -> int:
    return run(args.files, args.chunk_size, show_progress=not args.no_progress)


def register(subparsers: Any) -> None:
    scan = subparsers.add_parser(
        "scan",
        help="check block files: hash, size, transactions, chunks, merkle root from offsets",
        description="Read block files (Bitcoin Core's blkNNNNN.dat layout, or one raw block "
        "per file) and check each block through the streaming chunk splitter. Prints one "
        "line per block (hash, size, transactions, chunks, merkle root ok or MISMATCH) and "
        "a summary; exits 1 if a merkle root does not match.",
    )
    scan.add_argument("files", nargs="+", type=Path, metavar="FILE", help="blk*.dat or raw block")
    scan.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="BYTES",
        help="cut blocks into chunks of about this many bytes of whole transactions",
    )
    scan.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it shows only when stderr is a terminal anyway)",
    )
    scan.set_defaults(run=_run_args)
