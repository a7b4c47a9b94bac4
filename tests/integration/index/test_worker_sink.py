"""WorkerSink under a real download: a multi-chunk block from the regtest
node through download_blocks, each chunk parsed in a local worker process,
never more than K in flight, results in block order, txids rebuilding the
block's merkle root."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from peerpool.bitcoin import ClientManager, merkle_root
from peerpool.bitcoin.download import download_blocks
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.index.executors import LocalExecutor, OrderedRunner
from peerpool.index.sink import WorkerSink
from peerpool.index.work import ChunkResult, index_chunk
from peerpool.testing.blocks import BlockMaker
from tests.integration.bitcoin.recording import WAIT

pytestmark = pytest.mark.regtest
CHUNK = 256 << 10
K = 2


async def test_chunks_of_a_download_run_in_workers_in_order(block_maker: BlockMaker) -> None:
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    built = await asyncio.to_thread(block_maker.make_block, coin, 3_000_000, seed=77)
    await asyncio.to_thread(block_maker.submit, built)
    config = ProtocolConfig(chunk_size=CHUNK, large_message_limit=CHUNK)
    manager = ClientManager(
        [block_maker.node.p2p_address], "bsv-regtest", config=config, ping_interval=0
    )
    results: list[ChunkResult] = []
    with LocalExecutor(2) as pool:
        sink = WorkerSink(OrderedRunner(pool, index_chunk, max_in_flight=K), results.append)
        async with manager:
            await manager.wait_for_n_peers(1, WAIT)
            await asyncio.wait_for(download_blocks(manager, [built.hash], sink), WAIT)
        await sink.drain()
    assert len(results) > 5 and sink.max_seen_in_flight == K
    assert [r.chunk_num for r in results] == list(range(results[0].num_chunks))
    txids = np.concatenate([r.columns["tx_txid"] for r in results])
    assert merkle_root(txids) == built.header[36:68]
    offsets = np.concatenate([r.columns["tx_offset"] for r in results])
    assert offsets.tolist() == built.tx_offsets.tolist()
