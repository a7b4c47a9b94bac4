"""``peerpool sync``: headers to the peers' tip, then every block of the best
chain into a file sink, with progress bars and a summary. Resumable: the
header store, peer store and sink live in ``--data``, and a second run fetches
only what the first did not finish. The last line printed is
``tip <height> <hash>``. One run at a time per ``--data`` folder: the folder is
locked (``peerpool.folder_lock``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from peerpool.bitcoin.blocks import DEFAULT_CHUNK_SIZE
from peerpool.bitcoin.download import download_blocks
from peerpool.bitcoin.header_store import ConnectResult, HeadersStore
from peerpool.bitcoin.manager import ClientManager
from peerpool.bitcoin.networks import NETWORKS, get_network
from peerpool.bitcoin.peer_store import PeerStore
from peerpool.bitcoin.protocol_config import ProtocolConfig
from peerpool.bitcoin.received import Block
from peerpool.bitcoin.sink import FileSink
from peerpool.bitcoin.sync import sync_headers
from peerpool.cli_errors import CommandError, one_line
from peerpool.errors import PeerpoolError, PeerTimeoutError
from peerpool.folder_lock import FolderLock
from peerpool.net import parse_address
from peerpool.pool import ConnectionInfo


@dataclass(frozen=True)
class SyncOptions:
    network: str
    peers: list[str]
    data: Path
    concurrency: int
    chunk_size: int
    large_message_limit: int
    connect_timeout: float
    headers_only: bool
    show_progress: bool


def _say(text: str) -> None:
    print(f"peerpool sync: {text}", file=sys.stderr, flush=True)


class _ReportingManager(ClientManager):
    """Says on stderr what is tried and why it failed, once per peer and
    reason, so that a peer that is down is not a silent wait; keeps the last
    failure of each peer for the error when no peer comes up in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures: dict[str, tuple[str, int]] = {}

    async def on_dial_failed(self, conn: ConnectionInfo, error: PeerpoolError) -> None:
        peer = str(getattr(conn.address, "peer_address", conn.address).node_id)
        reason = f"{type(error).__name__}: {error}"
        previous, count = self.failures.get(peer, ("", 0))
        self.failures[peer] = (reason, count + 1)
        if reason != previous:
            _say(f"{peer}: {reason} (retrying)")
        await super().on_dial_failed(conn, error)


def _validate(options: SyncOptions) -> None:
    for peer in options.peers:
        parse_address(peer)  # AddressError names the address and what is wrong with it
    for name, value in (
        ("--concurrency", options.concurrency),
        ("--chunk-size", options.chunk_size),
        ("--large-message-limit", options.large_message_limit),
    ):
        if value < 1:
            raise CommandError(f"{name} must be at least 1, not {value}")
    if not options.connect_timeout > 0:
        raise CommandError(f"--connect-timeout must be positive, not {options.connect_timeout}")


def run(options: SyncOptions) -> int:
    _validate(options)
    lock = FolderLock(options.data, "peerpool sync")
    try:
        lock.acquire()
    except OSError as exc:  # a file, /proc, no permission: say which folder it is about
        raise CommandError(f"--data {options.data}: cannot be used ({one_line(exc)})") from exc
    try:
        return asyncio.run(_sync(options))
    finally:
        lock.release()


async def _sync(options: SyncOptions) -> int:
    network = get_network(options.network)
    started = time.monotonic()
    with HeadersStore(options.data / f"headers.{network.name}", network) as store:
        sink = FileSink(options.data / f"blocks.{network.name}", height_of=store.height_of)
        config = ProtocolConfig(
            start_height=store.height,
            chunk_size=options.chunk_size,
            large_message_limit=options.large_message_limit,
        )
        manager = _ReportingManager(
            options.peers,
            network,
            concurrency=options.concurrency,
            config=config,
            peer_store=PeerStore(options.data, network.name),
        )
        async with manager:
            _say(
                f"connecting to {', '.join(options.peers)} ({network.name}; "
                f"waiting up to {options.connect_timeout:g} s for a first peer)"
            )
            try:
                await manager.wait_for_n_peers(1, options.connect_timeout)
            except PeerTimeoutError:
                raise _no_peer(options, manager) from None
            first = store.height
            await _headers(manager, store, options.show_progress)
            downloaded, size = 0, 0
            if not options.headers_only:
                downloaded, size = await _blocks(manager, store, sink, options.show_progress)
        elapsed = time.monotonic() - started
        tip = store.tip
        print(
            f"headers: {tip.height - first} new, {store.height + 1} on the best chain; "
            f"blocks: {downloaded} downloaded ({size / 1e6:.1f} MB), {len(sink)} stored "
            f"in {sink.folder}; "
            f"{elapsed:.1f} s"
        )
        print(f"tip {tip.height} {tip.hash_hex}")
    return 0


def _no_peer(options: SyncOptions, manager: _ReportingManager) -> CommandError:
    causes = [
        f"{peer}: {reason} ({count} attempt{'s' if count > 1 else ''})"
        for peer, (reason, count) in manager.failures.items()
    ]
    why = "; ".join(causes) or "no connection attempt finished"
    return CommandError(f"no peer connected within {options.connect_timeout:g} s: {why}")


async def _headers(manager: ClientManager, store: HeadersStore, show: bool) -> None:
    peer = await manager.get_next_available_peer()
    target = peer.peer_version.start_height if peer.peer_version else None
    with tqdm(
        total=target, initial=store.height, unit="hdr", desc="headers",
        disable=None if show else True, file=sys.stderr,
    ) as bar:  # fmt: skip

        def progress(result: ConnectResult) -> None:
            bar.update(max(result.tip.height - bar.n, 0))

        await manager.run_on_peer(
            "header sync", lambda c: sync_headers(c, store, progress=progress)
        )


async def _blocks(
    manager: ClientManager, store: HeadersStore, sink: FileSink, show: bool
) -> tuple[int, int]:
    wanted = [h for h in store.best_chain_hashes() if not sink.has(h)]
    with tqdm(
        total=len(wanted), unit="blk", desc="blocks", disable=None if show else True,
        file=sys.stderr,
    ) as bar:  # fmt: skip

        def progress(block: Block) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{block.size / 1e6:.1f} MB", refresh=False)

        report = await download_blocks(manager, wanted, sink, progress=progress)
    return report.blocks, report.bytes


def _run_args(args: argparse.Namespace) -> int:
    return run(
        SyncOptions(
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


def register(subparsers: Any) -> None:
    sync = subparsers.add_parser(
        "sync",
        help="sync headers from peers, then download the blocks into a folder (resumable)",
        description="Sync headers to the peers' tip (reorg-aware, best chain by work), then "
        "store every block of the best chain in --data as chunks with their transaction "
        "offsets. A second run resumes where the first stopped. Ends by printing "
        "'tip <height> <hash>'. Progress bars go to stderr when it is a terminal.",
    )
    sync.add_argument(
        "--network",
        required=True,
        choices=sorted(NETWORKS),
        metavar="NETWORK",
        help="the peers' network: " + ", ".join(sorted(NETWORKS)),
    )
    sync.add_argument(
        "--peer",
        action="append",
        required=True,
        metavar="HOST:PORT",
        help="a peer to sync from (repeat for several); the port defaults to the network's",
    )
    sync.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the header store, peer store and blocks (created if missing; "
        "one sync at a time may use it)",
    )
    sync.add_argument("--concurrency", type=int, default=2, help="connections per peer")
    sync.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="BYTES",
        help="large blocks are stored as chunks of about this many bytes",
    )
    sync.add_argument(
        "--large-message-limit",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="BYTES",
        help="blocks of this size or more are streamed as chunks instead of read whole",
    )
    sync.add_argument(
        "--connect-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="give up when no peer has connected after this long",
    )
    sync.add_argument(
        "--headers-only", action="store_true", help="stop after the headers (no blocks)"
    )
    sync.add_argument("--no-progress", action="store_true", help="no progress bars")
    sync.set_defaults(run=_run_args)
