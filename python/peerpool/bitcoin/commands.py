"""The Bitcoin subcommands of ``peerpool``."""

from __future__ import annotations

import argparse
from pathlib import Path

from peerpool.bitcoin.blocks import DEFAULT_CHUNK_SIZE


def _run_scan(args: argparse.Namespace) -> int:
    from peerpool.bitcoin import scan

    return scan.run(args.files, args.chunk_size, show_progress=not args.no_progress)


def _run_sync(args: argparse.Namespace) -> int:
    from peerpool.bitcoin import sync_command

    return sync_command.run(
        sync_command.SyncOptions(
            network=args.network,
            peers=args.peer,
            data=args.data,
            concurrency=args.concurrency,
            chunk_size=args.chunk_size,
            large_message_limit=args.large_message_limit,
            connect_timeout=args.connect_timeout,
            headers_only=args.headers_only,
            show_progress=not args.no_progress,
        )
    )


def _register_sync(subparsers: argparse._SubParsersAction) -> None:
    sync = subparsers.add_parser(
        "sync",
        help="sync headers from peers, then download the blocks into a folder (resumable)",
        description="Sync headers to the peers' tip, then store every block of the best chain "
        "as chunks with their transaction offsets. Ends by printing 'tip <height> <hash>'.",
    )
    sync.add_argument("--network", required=True, help="bsv-mainnet, btc-regtest, ...")
    sync.add_argument(
        "--peer", action="append", required=True, metavar="HOST:PORT", help="a peer (repeatable)"
    )
    sync.add_argument("--data", type=Path, required=True, help="folder for headers and blocks")
    sync.add_argument("--concurrency", type=int, default=2, help="connections per peer (2)")
    sync.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="chunk size in bytes (32 MiB)"
    )
    sync.add_argument(
        "--large-message-limit",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help="blocks of this size or more are streamed as chunks (32 MiB)",
    )
    sync.add_argument(
        "--connect-timeout", type=float, default=60.0, help="seconds to wait for a first peer"
    )
    sync.add_argument("--headers-only", action="store_true", help="stop after the headers")
    sync.add_argument("--no-progress", action="store_true", help="no progress bars")
    sync.set_defaults(run=_run_sync)


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
    _register_sync(subparsers)
