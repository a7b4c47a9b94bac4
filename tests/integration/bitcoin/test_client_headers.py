"""Header sync and tip following against the real node: hundreds of blocks,
then a real reorg (invalidateblock, a longer branch mined) reported with the
right common ancestor and hash lists."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from peerpool.bitcoin import BitcoinClient, HeadersStore
from peerpool.bitcoin.header_store import ConnectResult
from peerpool.bitcoin.sync import follow_tips, sync_headers
from peerpool.testing import RegtestNode
from tests.integration.bitcoin.recording import WAIT

pytestmark = pytest.mark.regtest


def node_chain(node: RegtestNode, start: int = 0) -> list[bytes]:
    """The node's best chain from ``start`` as internal-order hashes."""
    count = node.block_count()
    return [bytes.fromhex(node.rpc("getblockhash", h))[::-1] for h in range(start, count + 1)]


async def connected(node: RegtestNode) -> BitcoinClient:
    client = BitcoinClient(node.p2p_address, "bsv-regtest", ping_interval=0)
    await asyncio.wait_for(client.connect(), WAIT)
    return client


async def test_sync_hundreds_of_headers(regtest_node: RegtestNode, tmp_path: Path) -> None:
    await asyncio.to_thread(regtest_node.generate, 300)
    expected = await asyncio.to_thread(node_chain, regtest_node)
    assert len(expected) > 300
    batches: list[int] = []
    client = await connected(regtest_node)
    try:
        with HeadersStore(tmp_path / "headers", "bsv-regtest") as store:
            changes = await asyncio.wait_for(
                sync_headers(client, store, progress=lambda r: batches.append(r.added)), WAIT
            )
            assert store.tip.height == len(expected) - 1
            assert list(store.best_chain_hashes()) == expected
            assert sum(batches) == len(expected) - 1 and changes[-1].tip == store.tip
            assert all(r.reorg is None for r in changes)
            # a second sync from the same peer has nothing to add
            assert await asyncio.wait_for(sync_headers(client, store), WAIT) == []
        # reopened, the store still has all of it and syncs nothing new
        with HeadersStore(tmp_path / "headers", "bsv-regtest") as store:
            assert list(store.best_chain_hashes()) == expected
            assert await asyncio.wait_for(sync_headers(client, store), WAIT) == []
    finally:
        await client.close()


async def next_change(tips: object) -> ConnectResult:
    return await asyncio.wait_for(tips.__anext__(), WAIT)  # type: ignore[attr-defined]


async def test_follow_tips_through_a_reorg(regtest_node: RegtestNode, tmp_path: Path) -> None:
    client = await connected(regtest_node)
    store = HeadersStore(tmp_path / "headers", "bsv-regtest")
    tips = follow_tips(client, store, poll_interval=WAIT)
    try:
        await next_change(tips)  # the initial sync
        assert store.tip.hash_hex == regtest_node.best_block_hash()

        # a new block is announced and followed
        [new_hash] = await asyncio.to_thread(regtest_node.generate, 1)
        change = await next_change(tips)
        assert change.tip.hash_hex == new_hash and change.reorg is None

        # fork three blocks below the tip, then mine a longer branch
        height = regtest_node.block_count()
        old_branch = await asyncio.to_thread(node_chain, regtest_node, height - 2)
        ancestor = bytes.fromhex(regtest_node.rpc("getblockhash", height - 3))[::-1]
        await asyncio.to_thread(regtest_node.rpc, "invalidateblock", old_branch[0][::-1].hex())
        await asyncio.to_thread(regtest_node.generate, 4)
        new_branch = await asyncio.to_thread(node_chain, regtest_node, height - 2)
        assert len(new_branch) == 4 and not set(new_branch) & set(old_branch)

        reorg = None
        while reorg is None:  # the branch may arrive in more than one announcement
            change = await next_change(tips)
            reorg = change.reorg
        assert reorg.common_ancestor.hash == ancestor
        assert reorg.common_ancestor.height == height - 3
        assert reorg.disconnected == old_branch
        assert reorg.old_tip.hash == old_branch[-1]
        assert reorg.connected == new_branch[: len(reorg.connected)]
        while store.tip.hash != new_branch[-1]:
            await next_change(tips)
        assert list(store.best_chain_hashes(height - 2)) == new_branch
        # every branch is kept: the old one is still known, just not best
        assert all(h in store and not store.is_on_best_chain(h) for h in old_branch)
    finally:
        await tips.aclose()
        await client.close()
        store.close()
