"""The node stopped in the middle of a block download and started again: the
manager reconnects (refused connections retried with backoff) and the download
finishes, every block exactly once. The test runs its own node so that the
shared one never goes down under other tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from peerpool.bitcoin import BitcoinClient, Block, ClientManager
from peerpool.bitcoin.blocks import Chunk
from peerpool.bitcoin.download import download_blocks
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.net import Backoff
from peerpool.testing import RegtestNode
from peerpool.testing.blocks import BlockMaker, BuiltBlock
from tests.integration.bitcoin.recording import WAIT

pytestmark = pytest.mark.regtest

STOP_AFTER = 5  # blocks delivered before the node goes down


@pytest.fixture
def own_node() -> Iterator[RegtestNode]:
    with RegtestNode() as node:
        yield node


class StoppingSink:
    """Stops the node (and waits until it is down) when the STOP_AFTER-th block
    arrives; holding one lock while doing so keeps the other connections'
    blocks from being delivered meanwhile, so the rest of the download must
    happen after the restart, however fast the machine."""

    def __init__(self, node: RegtestNode) -> None:
        self.node = node
        self.lock = asyncio.Lock()
        self.blocks: list[Block] = []
        self.chunks: dict[bytes, list[int]] = {}
        self.aborted: list[bytes] = []
        self.restart: asyncio.Future[None] | None = None

    async def on_chunk(self, chunk: Chunk, client: BitcoinClient) -> None:
        self.chunks.setdefault(chunk.block_hash, []).append(chunk.chunk_num)

    async def on_block(self, block: Block, client: BitcoinClient) -> None:
        async with self.lock:
            self.blocks.append(block)
            if len(self.blocks) == STOP_AFTER:
                await asyncio.to_thread(self.node.stop)
                self.restart = asyncio.ensure_future(asyncio.to_thread(self.node.start))

    async def on_abort(self, block_hash: bytes) -> None:
        self.aborted.append(block_hash)
        self.chunks.pop(block_hash, None)


def build_chain(node: RegtestNode, count: int) -> list[BuiltBlock]:
    maker = BlockMaker(node)
    [coin] = maker.mine_coins(1)
    built = []
    for seed in range(count):
        # every third block is over the large-message limit below: chunks too
        size = 1_200_000 if seed % 3 == 0 else 100_000
        block = maker.make_block(coin, size, seed=seed)
        maker.submit(block)
        assert block.change is not None
        coin = block.change
        built.append(block)
    return built


async def test_download_survives_a_node_restart(own_node: RegtestNode) -> None:
    wanted = await asyncio.to_thread(build_chain, own_node, 24)
    sink = StoppingSink(own_node)
    manager = ClientManager(
        [own_node.p2p_address],
        "bsv-regtest",
        concurrency=2,
        config=ProtocolConfig(large_message_limit=1 << 20, chunk_size=256 << 10),
        reconnect_backoff=Backoff(initial=0.2, multiplier=2.0, cap=2.0, jitter=0.2),
        ping_interval=0,
    )
    async with manager:
        await manager.wait_for_n_peers(2, WAIT)
        first_ids = {conn.id for conn in manager.connections.values()}
        report = await asyncio.wait_for(
            download_blocks(manager, [b.hash for b in wanted], sink, deadline=WAIT), WAIT * 2
        )
        assert sink.restart is not None
        await asyncio.wait_for(sink.restart, WAIT)
        later_ids = {conn.id for conn in manager.connections.values()}
    assert later_ids and not later_ids & first_ids  # both connections were made anew
    assert report.blocks == len(wanted) == len(sink.blocks)
    assert report.rerequests >= 1  # the requests in flight at the stop were made again
    got = {b.hash: b for b in sink.blocks}
    assert len(got) == len(wanted)  # each block exactly once
    for built in wanted:
        block = got[built.hash]
        assert block.size == built.size and block.tx_count == len(built.txids)
        if block.raw is not None:
            assert block.raw == bytes(built.raw)
        else:  # a LARGE block: all its chunks, in order, from one attempt
            assert sink.chunks[built.hash] == list(range(block.num_chunks))
