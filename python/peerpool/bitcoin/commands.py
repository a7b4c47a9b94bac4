"""The Bitcoin subcommands of ``peerpool``."""

from __future__ import annotations

import argparse
from pathlib import Path

from peerpool.bitcoin.blocks import DEFAULT_CHUNK_SIZE


def _run_scan(args: argparse.Namespace) -> int:
    from peerpool.bitcoin import scan

    return scan.run(args.files, args.chunk_size, show_progress=not args.no_progress)


def register(subparsers: argparse._SubParsersAction) -> None:
    scan = subparsers.add_parser(
        "scan",
        help="check block files: hash, size, transactions, chunks, merkle root from offsets",
        description="Read block files (blkNNNNN.dat layout or raw blocks) and check each block.",
    )
    scan.add_argument("files", nargs="+", type=Path, help="blk*.dat files or raw blocks")
    scan.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="chunk size in bytes (32 MiB)"
    )
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")
    scan.set_defaults(run=_run_scan)
