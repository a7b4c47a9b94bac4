"""FileSink: blocks stored as chunks with offsets, verified from disk, and
recovered after a crash at any point of a write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from peerpool.bitcoin.blocks import Chunk, hash_hex
from peerpool.bitcoin.messages.framing import encode_message
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.bitcoin.received import Block, BlockKind
from peerpool.bitcoin.sink import INDEX_NAME, FileSink, read_index, verify_stored_block
from peerpool.errors import InputError
from peerpool.testing.blocks import BuiltBlock
from tests.bitcoin.test_protocol import BSV, established, small_block


def received(built: BuiltBlock, large: bool) -> tuple[list[Chunk], Block]:
    """What a connection delivers for ``built``: chunks (LARGE) and the block."""
    config = ProtocolConfig(large_message_limit=100_000 if large else 32 << 20, chunk_size=64 << 10)
    proto = established(config=config)
    proto.receive_data(encode_message(BSV.magic, "block", bytes(built.raw)))
    events = proto.events_received()
    block = events[-1]
    assert isinstance(block, Block) and block.kind is (
        BlockKind.LARGE if large else BlockKind.SMALL
    )
    return [e for e in events if isinstance(e, Chunk)], block


async def store(sink: FileSink, chunks: list[Chunk], block: Block) -> None:
    for chunk in chunks:
        await sink.on_chunk(chunk)
    await sink.on_block(block)


@pytest.mark.parametrize("large", [False, True])
async def test_stored_block_verifies_and_survives_reopening(tmp_path: Path, large: bool) -> None:
    built = small_block(target_size=400_000, seed=31)
    chunks, block = received(built, large)
    sink = FileSink(tmp_path, height_of=lambda h: 1 if h == built.hash else None)
    await store(sink, chunks, block)
    assert sink.has(built.hash) and len(sink) == 1
    [entry] = read_index(tmp_path)
    assert (entry.hash, entry.height, entry.size) == (built.hash_hex, 1, built.size)
    assert entry.tx_count == len(built.txids)
    assert entry.num_chunks == (len(chunks) if large else 1)
    assert verify_stored_block(tmp_path, entry)
    # the offsets on disk are the block's
    files = sorted((tmp_path / entry.hash).glob("*.offsets.npy"))
    stored = np.concatenate([np.load(f) for f in files])
    np.testing.assert_array_equal(stored, built.tx_offsets)
    reopened = FileSink(tmp_path)
    assert reopened.has(built.hash) and verify_stored_block(tmp_path, reopened.index[entry.hash])


async def test_tampered_chunk_fails_verification(tmp_path: Path) -> None:
    built = small_block(target_size=200_000, seed=32)
    chunks, block = received(built, large=True)
    sink = FileSink(tmp_path)
    await store(sink, chunks, block)
    [entry] = read_index(tmp_path)
    path = tmp_path / entry.hash / "chunk_00001.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not verify_stored_block(tmp_path, entry)


async def test_abort_discards_the_partial_block(tmp_path: Path) -> None:
    built = small_block(target_size=300_000, seed=33)
    chunks, block = received(built, large=True)
    sink = FileSink(tmp_path)
    for chunk in chunks[:2]:
        await sink.on_chunk(chunk)
    assert (tmp_path / (built.hash_hex + ".partial")).is_dir()
    await sink.on_abort(built.hash)
    assert not (tmp_path / (built.hash_hex + ".partial")).exists() and not sink.has(built.hash)
    await store(sink, chunks, block)  # it came again, from the start
    assert verify_stored_block(tmp_path, read_index(tmp_path)[0])


async def test_chunks_out_of_order_are_refused(tmp_path: Path) -> None:
    built = small_block(target_size=300_000, seed=34)
    chunks, block = received(built, large=True)
    sink = FileSink(tmp_path)
    await sink.on_chunk(chunks[0])
    with pytest.raises(InputError):
        await sink.on_chunk(chunks[2])
    with pytest.raises(InputError):  # the block with chunks missing is not indexed
        await sink.on_block(block)
    assert not sink.has(built.hash)


async def test_recovery_after_a_crash(tmp_path: Path) -> None:
    blocks = [small_block(target_size=50_000, seed=s) for s in (40, 41, 42)]
    sink = FileSink(tmp_path)
    for built in blocks[:2]:
        await store(sink, *received(built, large=False))
    # a crash while writing the third block's index line (torn), with a
    # partial folder of a fourth and a renamed but unindexed folder of the third
    index = tmp_path / INDEX_NAME
    third = blocks[2]
    _, block = received(third, large=False)
    await sink.on_block(block)
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(b"".join(lines[:2]) + lines[2][:30])
    (tmp_path / ("ab" * 32 + ".partial")).mkdir()
    reopened = FileSink(tmp_path)
    assert [reopened.has(b.hash) for b in blocks] == [True, True, False]
    assert not (tmp_path / third.hash_hex).exists()
    assert not (tmp_path / ("ab" * 32 + ".partial")).exists()
    assert index.read_bytes() == b"".join(lines[:2])  # the torn line was cut
    assert all(json.loads(line)["hash"] != hash_hex(third.hash) for line in lines[:2])
    await reopened.on_block(block)  # the resumed download stores it again
    assert [verify_stored_block(tmp_path, e) for e in read_index(tmp_path)] == [True] * 3
