"""Blocks from the real node: small ones whole, a large one (tens of MB, built
by the test) as chunks with a small chunk size, every chunk's offsets checked
against the merkle root."""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import pytest

from peerpool.bitcoin import BitcoinClient, BlockKind
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.blocks import Chunk, merkle_root
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.errors import BlockNotFoundError
from peerpool.testing import RegtestNode
from peerpool.testing.blocks import BlockMaker
from tests.integration.bitcoin.fake_peer import NETWORK, FakeSide, fake_peer
from tests.integration.bitcoin.recording import WAIT, RecordingHandlers

pytestmark = pytest.mark.regtest


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


async def connect(node: RegtestNode, handlers: RecordingHandlers, **config: int) -> BitcoinClient:
    client = BitcoinClient(
        node.p2p_address, "bsv-regtest", handlers, config=ProtocolConfig(**config), ping_interval=0
    )
    await asyncio.wait_for(client.connect(), WAIT)
    return client


async def test_small_blocks(regtest_node: RegtestNode, block_maker: BlockMaker) -> None:
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    built = await asyncio.to_thread(block_maker.make_block, coin, 300_000, seed=21)
    await asyncio.to_thread(block_maker.submit, built)
    generated = await asyncio.to_thread(regtest_node.generate, 3)
    handlers = RecordingHandlers()
    client = await connect(regtest_node, handlers)
    try:
        block = await asyncio.wait_for(client.get_block(built.hash), WAIT)
        assert block.kind is BlockKind.SMALL and block.raw == bytes(built.raw)
        np.testing.assert_array_equal(block.tx_offsets, built.tx_offsets)
        assert block.tx_count == len(built.txids) and block.num_chunks == 0
        for block_hash in generated:
            raw_hex = await asyncio.to_thread(regtest_node.rpc, "getblock", block_hash, 0)
            block = await asyncio.wait_for(client.get_block(bytes.fromhex(block_hash)[::-1]), WAIT)
            assert block.hash_hex == block_hash and block.raw == bytes.fromhex(raw_hex)
        assert [b.hash_hex for b in handlers.messages("block")] == [built.hash_hex, *generated]
        assert handlers.messages("chunk") == []
    finally:
        await client.close()


async def test_large_block_as_chunks(regtest_node: RegtestNode, block_maker: BlockMaker) -> None:
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    built = await asyncio.to_thread(block_maker.make_block, coin, 30_000_000, seed=22)
    await asyncio.to_thread(block_maker.submit, built)
    chunk_size = 1 << 20
    handlers = RecordingHandlers()
    client = await connect(
        regtest_node, handlers, large_message_limit=8 << 20, chunk_size=chunk_size
    )
    from_callback: list[Chunk] = []

    async def on_chunk(chunk: Chunk) -> None:
        from_callback.append(chunk)

    try:
        block = await asyncio.wait_for(client.get_block(built.hash, on_chunk=on_chunk), WAIT)
    finally:
        await client.close()
    assert block.kind is BlockKind.LARGE and block.raw is None
    assert (block.hash, block.size, block.tx_count) == (built.hash, built.size, len(built.txids))
    chunks = handlers.messages("chunk")
    assert [c.chunk_num for c in chunks] == list(range(block.num_chunks))
    assert block.num_chunks == -(-built.size // chunk_size) == 29
    assert [c.chunk_num for c in from_callback] == list(range(block.num_chunks))
    assert handlers.commands()[-1] == "block"  # on_block after every chunk
    np.testing.assert_array_equal(block.tx_offsets, built.tx_offsets)

    raw = memoryview(built.raw)
    txids: list[bytes] = []
    for chunk in chunks:
        offsets = chunk.tx_offsets.tolist()
        end = chunk.start + len(chunk.data)
        assert all(chunk.start <= o < end for o in offsets)
        assert len(chunk.data) <= chunk_size + 2_000  # a chunk ends within a transaction of C
        for start, stop in zip(offsets, [*offsets[1:], end], strict=True):
            tx = chunk.data[start - chunk.start : stop - chunk.start]
            assert tx == raw[start:stop]
            txids.append(sha256d(tx))
        # each chunk's own txids, from the kernel, agree with the slices
        assert chunk.txids().tobytes() == b"".join(txids[chunk.first_tx_index :])
    assert tuple(txids) == built.txids
    rebuilt = merkle_root(np.frombuffer(b"".join(txids), np.uint8).reshape(-1, 32))
    assert rebuilt == block.merkle_root == bytes(built.raw[36:68])


async def test_notfound_fails_the_request() -> None:
    async def script(side: FakeSide) -> None:
        await side.handshake()
        request = await side.expect(msgs.GetData)
        assert isinstance(request, msgs.GetData)
        await side.send(msgs.NotFound(request.items))
        await side.silent()

    async with fake_peer(script) as address:
        client = BitcoinClient(address, NETWORK, ping_interval=0)
        await asyncio.wait_for(client.connect(), WAIT)
        with pytest.raises(BlockNotFoundError):
            await asyncio.wait_for(client.get_block(b"\x11" * 32), WAIT)
        assert client.is_connected
        await client.close()


async def test_deadlines_and_the_rate_floor_spare_a_real_block(
    regtest_node: RegtestNode, block_maker: BlockMaker
) -> None:
    """A 10 MB block from the node while our chunk handler is slow (3 s in
    all), with a 1 s request deadline, a 0.5 s rate window and a 0.5 s ping
    timeout: a message in flight and a busy handler extend them, so the block
    comes whole and the connection stays up."""
    [coin] = await asyncio.to_thread(block_maker.mine_coins, 1)
    built = await asyncio.to_thread(block_maker.make_block, coin, 10_000_000, seed=23)
    await asyncio.to_thread(block_maker.submit, built)

    class SlowHandlers(RecordingHandlers):
        async def on_block_chunk(self, chunk: Chunk, client: BitcoinClient) -> None:
            await asyncio.sleep(0.3)
            await super().on_block_chunk(chunk, client)

    handlers = SlowHandlers()
    client = BitcoinClient(
        regtest_node.p2p_address,
        "bsv-regtest",
        handlers,
        config=ProtocolConfig(large_message_limit=1 << 20, chunk_size=1 << 20),
        request_timeout=1.0,
        stall_window=0.5,
        ping_interval=0.2,
        ping_timeout=0.5,
    )
    await asyncio.wait_for(client.connect(), WAIT)
    try:
        block = await asyncio.wait_for(client.get_block(built.hash), WAIT)
        assert (block.hash, block.size, block.num_chunks) == (built.hash, built.size, 10)
        assert client.is_connected
    finally:
        await client.close()
