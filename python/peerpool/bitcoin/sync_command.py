"""``peerpool sync``: headers to the peers' tip, then every block of the best
chain into a file sink, with progress bars and a summary. Resumable: the
header store, peer store and sink live in ``--data``, and a second run fetches
only what the first did not finish. The last line printed is
``tip <height> <hash>``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from peerpool.bitcoin.download import download_blocks
from peerpool.bitcoin.handlers import Block
from peerpool.bitcoin.header_store import ConnectResult, HeadersStore
from peerpool.bitcoin.manager import ClientManager
from peerpool.bitcoin.networks import get_network
from peerpool.bitcoin.peer_store import PeerStore
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.bitcoin.sink import FileSink
from peerpool.bitcoin.sync import sync_headers


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


def run(options: SyncOptions) -> int:
    return asyncio.run(_sync(options))


async def _sync(options: SyncOptions) -> int:
    network = get_network(options.network)
    options.data.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with HeadersStore(options.data / f"headers.{network.name}", network) as store:
        sink = FileSink(options.data / f"blocks.{network.name}", height_of=store.height_of)
        config = ProtocolConfig(
            start_height=store.height,
            chunk_size=options.chunk_size,
            large_message_limit=options.large_message_limit,
        )
        manager = ClientManager(
            options.peers,
            network,
            concurrency=options.concurrency,
            config=config,
            peer_store=PeerStore(options.data, network.name),
        )
        async with manager:
            await manager.wait_for_n_peers(1, options.connect_timeout)
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


async def _headers(manager: ClientManager, store: HeadersStore, show: bool) -> None:
    peer = await manager.get_next_available_peer()
    target = peer.peer_version.start_height if peer.peer_version else None
    with tqdm(
        total=target, initial=store.height, unit="hdr", desc="headers", disable=not show,
        file=sys.stderr,
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
        total=len(wanted), unit="blk", desc="blocks", disable=not show, file=sys.stderr
    ) as bar:

        def progress(block: Block) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{block.size / 1e6:.1f} MB", refresh=False)

        report = await download_blocks(manager, wanted, sink, progress=progress)
    return report.blocks, report.bytes
