"""ClientManager against the real node: several connections per peer, round
robin, banned peers, broadcast-and-listen, block download spread over connections."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from peerpool.bitcoin import BitcoinClient, Block, ClientManager, PeerStore
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.blocks import Chunk
from peerpool.bitcoin.download import download_blocks
from peerpool.errors import BannedPeerError, PeerTimeoutError
from peerpool.testing import RegtestNode, free_port
from peerpool.testing.blocks import BlockMaker
from peerpool.testing.transactions import invalid_tx, mempool_tx
from tests.integration.bitcoin.recording import WAIT, RecordingHandlers

pytestmark = pytest.mark.regtest


class MemorySink:
    """Keeps what it is given; a block must come whole exactly once."""

    def __init__(self) -> None:
        self.blocks: dict[bytes, Block] = {}
        self.chunks: dict[bytes, list[Chunk]] = {}
        self.aborted: list[bytes] = []
        self.delivered = Counter[bytes]()

    async def on_chunk(self, chunk: Chunk, client: BitcoinClient) -> None:
        self.chunks.setdefault(chunk.block_hash, []).append(chunk)

    async def on_block(self, block: Block, client: BitcoinClient) -> None:
        self.blocks[block.hash] = block
        self.delivered[block.hash] += 1

    async def on_abort(self, block_hash: bytes) -> None:
        self.aborted.append(block_hash)
        self.chunks.pop(block_hash, None)


async def test_connections_round_robin_and_handlers(regtest_node: RegtestNode) -> None:
    handlers = RecordingHandlers()
    manager = ClientManager(
        [regtest_node.p2p_address], "bsv-regtest", handlers, concurrency=3, ping_interval=0
    )
    async with manager:
        clients = await manager.wait_for_n_peers(3, WAIT)
        address = regtest_node.p2p_address
        assert [c.id for c in clients] == [address, f"{address}#1", f"{address}#2"]
        assert {c.peer for c in clients} == {address}
        assert handlers.manager is manager
        picked = [(await manager.get_next_available_peer(WAIT)).id for _ in range(6)]
        assert Counter(picked) == Counter({c.id: 2 for c in clients})
        # one handlers instance saw the handshake of every connection
        await handlers.wait_for("verack", count=3)
        assert {cid for cmd, _, cid in handlers.calls if cmd == "verack"} == {c.id for c in clients}
    assert manager.clients == {}
    assert all(not c.is_connected for c in clients)


async def test_banned_peer_is_not_dialed(regtest_node: RegtestNode, tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    peers.ban(regtest_node.p2p_address, "test")
    manager = ClientManager(
        [regtest_node.p2p_address], "bsv-regtest", peer_store=peers, ping_interval=0
    )
    outcome = await asyncio.wait_for(manager.connect_all_parallel(), WAIT)
    assert outcome.connected == []
    [error] = outcome.errors.values()
    assert isinstance(error, BannedPeerError) and "test" in str(error)
    await manager.close_all()


async def test_one_dead_peer_does_not_stop_the_others(regtest_node: RegtestNode) -> None:
    dead = f"127.0.0.1:{free_port()}"
    manager = ClientManager([dead, regtest_node.p2p_address], "bsv-regtest", ping_interval=0)
    async with manager:
        [client] = await manager.wait_for_n_peers(1, WAIT)
        assert client.peer == regtest_node.p2p_address
        assert dead in manager.list_disconnected()
    with pytest.raises(PeerTimeoutError):
        empty = ClientManager([dead], "bsv-regtest", ping_interval=0)
        async with empty:
            await empty.get_next_available_peer(timeout=0.5)


async def test_broadcast_and_listen(block_maker: BlockMaker) -> None:
    [good, spare] = await asyncio.to_thread(block_maker.mine_coins, 2)
    node = block_maker.node
    manager = ClientManager([node.p2p_address], "bsv-regtest", concurrency=3, ping_interval=0)
    async with manager:
        await manager.wait_for_n_peers(3, WAIT)
        reject, announced_by = await asyncio.wait_for(
            manager.broadcast_transaction_and_listen(mempool_tx(good), 1, wait_time=10.0), WAIT
        )
        assert reject is None
        # the node announced it on the connections that did not send it
        assert announced_by and set(announced_by) <= {f"{node.p2p_address}#{i}" for i in (1, 2)}

        reject, announced_by = await asyncio.wait_for(
            manager.broadcast_transaction_and_listen(invalid_tx(spare), 1, wait_time=10.0), WAIT
        )
        assert reject is not None and reject.code == msgs.RejectCode.INVALID
        assert announced_by == []


async def test_download_spread_over_connections(block_maker: BlockMaker) -> None:
    node = block_maker.node
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    wanted = []
    for seed in range(12):
        built = await asyncio.to_thread(block_maker.make_block, coin, 150_000, seed=seed)
        await asyncio.to_thread(block_maker.submit, built)
        assert built.change is not None
        coin = built.change
        wanted.append(built)
    manager = ClientManager([node.p2p_address], "bsv-regtest", concurrency=3, ping_interval=0)
    sink = MemorySink()
    async with manager:
        await manager.wait_for_n_peers(3, WAIT)
        report = await asyncio.wait_for(
            download_blocks(manager, [b.hash for b in wanted], sink), WAIT
        )
    assert report.blocks == len(wanted) and report.rerequests == 0
    assert len(report.by_client) == 3  # every connection took a share
    assert set(sink.delivered.values()) == {1}
    for built in wanted:
        assert sink.blocks[built.hash].raw == bytes(built.raw)
