"""Transactions through the real node: a valid one broadcast on one connection
is announced back on another; an invalid and a malformed one are rejected."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.bitcoin import BitcoinClient
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.networks import sha256d
from peerpool.errors import InputError
from peerpool.testing import RegtestNode
from peerpool.testing.blocks import BlockMaker
from peerpool.testing.transactions import invalid_tx, malformed_tx, mempool_tx
from tests.integration.bitcoin.recording import WAIT

pytestmark = pytest.mark.regtest


async def connect(node: RegtestNode) -> BitcoinClient:
    client = BitcoinClient(node.p2p_address, "bsv-regtest", ping_interval=0)
    await asyncio.wait_for(client.connect(), WAIT)
    return client


async def announced(client: BitcoinClient, txid: bytes) -> msgs.InvVector:
    while True:
        item = await client.tx_queue.get()
        if item.hash == txid:
            return item


async def test_valid_transaction_is_relayed(block_maker: BlockMaker) -> None:
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    raw = mempool_tx(coin)
    sender, listener = await connect(block_maker.node), await connect(block_maker.node)
    try:
        assert await asyncio.wait_for(sender.broadcast_transaction(raw, wait=1.0), WAIT) is None
        item = await asyncio.wait_for(announced(listener, sha256d(raw)), WAIT)
        assert item.kind == msgs.InvType.TX
        mempool = await asyncio.to_thread(block_maker.node.rpc, "getrawmempool")
        assert sha256d(raw)[::-1].hex() in mempool
    finally:
        await sender.close()
        await listener.close()


async def test_invalid_and_malformed_transactions_are_rejected(block_maker: BlockMaker) -> None:
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    client = await connect(block_maker.node)
    try:
        bad = invalid_tx(coin)
        reject = await asyncio.wait_for(client.broadcast_transaction(bad, wait=WAIT), WAIT)
        assert reject is not None and reject.code == msgs.RejectCode.INVALID
        assert reject.data == sha256d(bad) and reject.message == "tx"
        # too short to be a transaction at all: refused before it is sent
        with pytest.raises(InputError):
            await client.broadcast_transaction(malformed_tx())
        # long enough, but its one input is cut short: the node refuses to parse it
        garbled = malformed_tx() + bytes(12)
        reject = await asyncio.wait_for(client.broadcast_transaction(garbled, wait=WAIT), WAIT)
        assert reject is not None and reject.code == msgs.RejectCode.MALFORMED
        assert client.is_connected
    finally:
        await client.close()
