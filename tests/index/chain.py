"""A data folder as ``peerpool sync`` leaves it (header store and FileSink),
filled with real regtest-difficulty blocks built here (no node): each block
spends the chain of OP_TRUE outputs the one before left, so spends cross
blocks; blocks over ``chunk_size`` are stored as several chunks, as a
download of a large block would be."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from peerpool.bitcoin import BlockChunker, tx_offsets
from peerpool.bitcoin.header_store import HeadersStore
from peerpool.bitcoin.networks import get_network
from peerpool.bitcoin.received import Block, BlockKind
from peerpool.bitcoin.sink import FileSink
from peerpool.testing.blocks import BuiltBlock, ChainTip, build_block
from peerpool.testing.transactions import Coin

NETWORK = get_network("bsv-regtest")


@dataclass
class Chain:
    data: Path
    blocks: list[BuiltBlock] = field(default_factory=list)  # best chain above genesis
    chunk_size: int = 64 << 10

    @property
    def blocks_dir(self) -> Path:
        return self.data / f"blocks.{NETWORK.name}"

    def tip(self, blocks: list[BuiltBlock] | None = None) -> ChainTip:
        blocks = self.blocks if blocks is None else blocks
        if not blocks:
            genesis = NETWORK.genesis_header
            return ChainTip(
                NETWORK.genesis_hash, 0, int.from_bytes(genesis[68:72], "little"), 0x207FFFFF
            )
        b = blocks[-1]
        return ChainTip(b.hash, b.height, int.from_bytes(b.header[68:72], "little"), 0x207FFFFF)

    def grow(
        self,
        sizes: list[int],
        seed: int = 0,
        base: list[BuiltBlock] | None = None,
        tx_sizes: tuple[int, int] = (200, 2_000),
    ) -> list[BuiltBlock]:
        """Blocks of about these sizes on ``base`` (default: the chain), stored
        and connected; they become the best chain if they make it longest."""
        line = list(self.blocks if base is None else base)
        coin = line[-1].change if line and line[-1].change else Coin(bytes(32), 0, 50 * 10**8)
        new = []
        for i, size in enumerate(sizes):
            block = build_block(
                self.tip(line), coin, size, min_tx_size=tx_sizes[0], max_tx_size=tx_sizes[1],
                seed=seed + i, now=1_700_000_000 + len(line),
            )  # fmt: skip
            coin = block.change or coin
            line.append(block)
            new.append(block)
        self._store(new)
        if len(line) > len(self.blocks):
            self.blocks = line
        return new

    def _store(self, blocks: list[BuiltBlock]) -> None:
        with HeadersStore(self.data / f"headers.{NETWORK.name}", NETWORK) as headers:
            headers.connect(b"".join(b.header for b in blocks))
            sink = FileSink(self.blocks_dir, height_of=headers.height_of)
            asyncio.run(self._sink_all(sink, blocks))

    async def _sink_all(self, sink: FileSink, blocks: list[BuiltBlock]) -> None:
        for b in blocks:
            raw = bytes(b.raw)
            offsets = tx_offsets(raw)
            if len(raw) <= self.chunk_size:
                block = Block(
                    BlockKind.SMALL, b.hash, b.header, len(raw), len(offsets), offsets, 0, raw
                )
            else:
                chunks = BlockChunker(len(raw), self.chunk_size).feed(raw)
                for chunk in chunks:
                    await sink.on_chunk(chunk)
                block = Block(
                    BlockKind.LARGE, b.hash, b.header, len(raw), len(offsets), offsets, len(chunks)
                )
            await sink.on_block(block)


def genesis_too(data: Path) -> None:
    """Store the genesis block as sync does (it fetches every best-chain block)."""
    raw = NETWORK.genesis_header + _GENESIS_TXS
    offsets = tx_offsets(raw)
    block = Block(
        BlockKind.SMALL, NETWORK.genesis_hash, NETWORK.genesis_header, len(raw), 1, offsets, 0, raw
    )
    asyncio.run(FileSink(data / f"blocks.{NETWORK.name}").on_block(block))


# The genesis coinbase (the same on every network): one input, one output.
_GENESIS_TXS = bytes.fromhex(
    "01"
    "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff"
    "4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72"
    "206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff"
    "0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f"
    "61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
)


def make_chain(data: Path, sizes: list[int], chunk_size: int = 64 << 10) -> Chain:
    chain = Chain(data, chunk_size=chunk_size)
    with HeadersStore(data / f"headers.{NETWORK.name}", NETWORK):
        pass
    genesis_too(data)
    chain.grow(sizes)
    return chain
