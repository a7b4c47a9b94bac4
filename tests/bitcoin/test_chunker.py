"""Chunk splitter: the issue's rule checked literally and against the
reference, on real blocks, on megatx.bin with chunks smaller than it, on a
synthetic 100 MB block and on mutated blocks. The >4 GiB streamed block is in
test_chunker_soak.py."""

from __future__ import annotations

import pickle
import random
from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.bitcoin import BlockChunker, Chunk, merkle_root, tx_offsets
from peerpool.errors import BlockFormatError, MalformedBlockError, TxCountMismatchError
from tests.bitcoin import synthetic
from tests.reference import bitcoin as ref


def chunk_all(
    block: bytes, chunk_size: int, pieces: Iterable[int]
) -> tuple[BlockChunker, list[Chunk]]:
    """Feed the block in pieces of the given sizes (cycled) and collect chunks,
    checking the memory promise after every feed."""
    chunker = BlockChunker(len(block), chunk_size)
    spans = ref.scan_block(block)
    # C plus the transaction straddling a cut; until the first transaction is
    # handed out, the header and count are held too
    bound = chunk_size + max(s.end - s.start for s in spans) + spans[0].start
    sizes = list(pieces)
    chunks: list[Chunk] = []
    pos = i = 0
    while pos < len(block):
        n = sizes[i % len(sizes)]
        chunks += chunker.feed(block[pos : pos + n])
        pos, i = pos + n, i + 1
        assert chunker.buffered <= bound
    return chunker, chunks


def assert_matches_reference(block: bytes, chunk_size: int, chunks: list[Chunk]) -> None:
    expected = ref.chunk_rule(ref.scan_block(block), len(block), chunk_size)
    assert len(chunks) == len(expected) == -(-len(block) // chunk_size)
    for got, want in zip(chunks, expected, strict=True):
        assert (got.chunk_num, got.num_chunks, got.first_tx_index) == (
            want.chunk_num,
            want.num_chunks,
            want.first_tx_index,
        )
        assert got.tx_offsets.tolist() == want.tx_offsets
        if want.byte_range is None:
            assert got.data == b""
        else:
            lo, hi = want.byte_range
            assert (got.start, got.data) == (lo, block[lo:hi])
        assert got.block_hash == ref.sha256d(block[:80])
    txids = np.concatenate([c.txids() for c in chunks])
    assert merkle_root(txids) == block[36:68]


def assert_follows_the_rule(block: bytes, chunk_size: int, chunks: list[Chunk]) -> None:
    """The rule in the issue's words, checked on the chunks themselves."""
    S, C = len(block), chunk_size
    spans = ref.scan_block(block)
    assert len(chunks) == -(-S // C)
    taken = 0
    for k, chunk in enumerate(chunks):
        cut = S if k == len(chunks) - 1 else (k + 1) * C
        mine = spans[taken : taken + len(chunk.tx_offsets)]
        # the transactions not in an earlier chunk, in order...
        assert chunk.tx_offsets.tolist() == [s.start for s in mine]
        assert chunk.first_tx_index == taken
        # ...that end within the first (k+1)*C bytes...
        assert all(s.end <= cut for s in mine)
        taken += len(mine)
        # ...and all of them: the next one does not end within the cut
        if taken < len(spans):
            assert spans[taken].end > cut
            if not mine and k > 0:
                # a chunk is empty only when one transaction is larger than C
                # (chunk 0 also when the header and count leave too little room)
                assert spans[taken].end - spans[taken].start > C
    assert taken == len(spans)  # so the last chunk ends at the block's end


@pytest.mark.parametrize("chunk_size", [91, 1000, 4096, 50_000, 149_171, 149_172, 1 << 25])
def test_real_block_277647_follows_the_rule(chunk_size: int) -> None:
    block = synthetic.real_blocks()["277647.dat#0"]
    rng = random.Random(chunk_size)
    chunker, chunks = chunk_all(block, chunk_size, [rng.randint(1, 9000) for _ in range(50)])
    assert_matches_reference(block, chunk_size, chunks)
    assert_follows_the_rule(block, chunk_size, chunks)
    assert chunker.done and chunker.header == block[:80]
    assert chunker.tx_count == len(ref.scan_block(block))


def test_every_real_block_in_small_chunks() -> None:
    for block in synthetic.real_blocks().values():
        _, chunks = chunk_all(block, 300, [1, 7, 64, 513])
        assert_matches_reference(block, 300, chunks)


def megatx_block() -> bytes:
    rng = random.Random(11)
    small = [synthetic.random_tx(rng) for _ in range(5)]
    return synthetic.block([small[0], small[1], synthetic.megatx(), small[2], small[3], small[4]])


@pytest.mark.parametrize("chunk_size", [256 << 10, 500_000, 999_656, 1 << 20])
def test_megatx_block_with_chunks_smaller_than_the_transaction(chunk_size: int) -> None:
    block = megatx_block()
    _, chunks = chunk_all(block, chunk_size, [64 << 10, 1, 4000])
    assert_matches_reference(block, chunk_size, chunks)
    assert_follows_the_rule(block, chunk_size, chunks)
    counts = [len(c.tx_offsets) for c in chunks]
    if chunk_size == 256 << 10:  # 1 MB block: the megatx ends in the last of 4 chunks
        assert counts == [2, 0, 0, 4]


def test_megatx_alone() -> None:
    tx = synthetic.megatx()
    assert len(tx) == 999_657
    block = synthetic.block([tx])
    _, chunks = chunk_all(block, 300_000, [65536])
    assert [len(c.tx_offsets) for c in chunks] == [0, 0, 0, 1]
    assert [c.data for c in chunks] == [b"", b"", b"", tx]
    assert bytes(chunks[-1].txids()[0]) == ref.txid(tx)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(85, 3000), min_size=1, max_size=40),
    st.integers(91, 5000),
    st.lists(st.integers(1, 3000), min_size=1, max_size=5),
)
def test_rule_on_random_layouts(sizes: list[int], chunk_size: int, pieces: list[int]) -> None:
    block = synthetic.block([synthetic.sized_tx(s, fill=i % 256) for i, s in enumerate(sizes)])
    _, chunks = chunk_all(block, chunk_size, pieces)
    assert_follows_the_rule(block, chunk_size, chunks)
    assert_matches_reference(block, chunk_size, chunks)


def test_hundred_megabyte_block_of_small_transactions() -> None:
    """~100 MB, 32 MiB chunks, 64 KiB pieces. Chunks are checked and dropped
    as they come, so the test holds the block and one chunk at a time."""
    rng = random.Random(100)
    templates = [synthetic.random_tx(rng, segwit=i % 3 == 0) for i in range(300)]
    template_ids = [ref.txid(t) for t in templates]
    order = [rng.randrange(len(templates)) for _ in range(400_000)]
    total = 0
    for n, k in enumerate(order):
        total += len(templates[k])
        if total >= 100_000_000:
            order = order[: n + 1]
            break
    root = ref.merkle_root([template_ids[k] for k in order])
    head = synthetic.header(root) + ref.write_compact_size(len(order))
    block = b"".join([head, *(templates[k] for k in order)])
    assert len(block) > 100_000_000
    whole = tx_offsets(block)
    chunker = BlockChunker(len(block), 32 << 20)
    found: list[np.ndarray] = []
    txids: list[np.ndarray] = []
    view = memoryview(block)
    for pos in range(0, len(block), 64 << 10):
        for chunk in chunker.feed(view[pos : pos + (64 << 10)]):
            found.append(chunk.tx_offsets)
            txids.append(chunk.txids())
            offs = chunk.tx_offsets
            assert chunk.data == block[offs[0] : chunk.start + len(chunk.data)]
    assert len(found) == 3
    offsets = np.concatenate(found)
    assert np.array_equal(offsets, whole)
    assert merkle_root(np.concatenate(txids)) == root
    # the reference, on a sample: each sampled transaction, parsed from its
    # offset, ends where the next one starts
    ends = [*whole[1:].tolist(), len(block)]
    for i in rng.sample(range(len(whole)), 3000):
        assert ref.parse_tx(block, int(whole[i])).end == ends[i]


def test_constructor_and_overfeeding_errors() -> None:
    with pytest.raises(MalformedBlockError):
        BlockChunker(1000, 0)
    with pytest.raises(MalformedBlockError):
        BlockChunker(50)  # too small for a header, a count and a transaction
    block = synthetic.block([synthetic.sized_tx(200)])
    chunker = BlockChunker(len(block), 100)
    assert len(chunker.feed(block)) == 3
    with pytest.raises(TxCountMismatchError):
        chunker.feed(b"\x00")


def test_chunks_pickle_for_worker_processes() -> None:
    block = megatx_block()
    _, chunks = chunk_all(block, 256 << 10, [1 << 20])
    for chunk in chunks:
        copy = pickle.loads(pickle.dumps(chunk))
        assert (copy.chunk_num, copy.start, copy.data) == (chunk.chunk_num, chunk.start, chunk.data)
        assert np.array_equal(copy.txids(), chunk.txids())


def test_chunk_data_is_a_read_only_view_that_outlives_the_splitter() -> None:
    # 2 MiB chunks: their buffers are large enough to be pooled and reused.
    block = synthetic.block([synthetic.sized_tx(300_000, fill=i + 1) for i in range(20)])
    expected = [bytes(c.data) for c in chunk_all(block, 2 << 20, [1 << 20])[1]]
    chunker = BlockChunker(len(block), 2 << 20)
    first = chunker.feed(block[: 3 << 20])[0]
    view = first.data
    assert isinstance(view, memoryview) and view.readonly
    with pytest.raises(TypeError):
        view[0] = 0
    rest = chunker.feed(block[3 << 20 :])
    del chunker
    # Later chunks, and the pool handing buffers round, leave this one intact.
    assert [bytes(view), *(bytes(c.data) for c in rest)] == expected
    del first, rest
    again = chunk_all(block, 2 << 20, [1 << 20])[1]
    assert [bytes(c.data) for c in again] == expected
    assert bytes(view) == expected[0]


def test_mutated_blocks_give_the_reference_verdict() -> None:
    """Thousands of mutated blocks in random pieces and random chunk sizes:
    the reference's chunks, or a typed error where the reference rejects."""
    from tests.bitcoin.test_txscan import mutate, segwit_block

    rng = random.Random(8)
    real = synthetic.real_blocks()
    seeds = [real["blk_0_to_4.dat#1"], real["testnet_block.raw"], segwit_block(4, count=8)[0]]
    outcomes = {"accepted": 0, "rejected": 0}
    for _ in range(3000):
        block = mutate(rng, rng.choice(seeds))
        chunk_size = rng.choice([7, 100, 700, 5000])
        try:
            expected: Any = ref.chunk_rule(ref.scan_block(block), len(block), chunk_size)
        except ref.Rejected:
            expected = None
        step = rng.randint(1, 600)
        try:
            chunker = BlockChunker(len(block), chunk_size)
            chunks: list[Chunk] = []
            for pos in range(0, len(block), step):
                chunks += chunker.feed(block[pos : pos + step])
        except BlockFormatError as exc:
            assert isinstance(exc, ValueError) and exc.offset is not None
            assert expected is None, block.hex()
            outcomes["rejected"] += 1
            continue
        assert expected is not None, block.hex()
        assert [c.tx_offsets.tolist() for c in chunks] == [c.tx_offsets for c in expected]
        outcomes["accepted"] += 1
    assert min(outcomes.values()) > 100, outcomes
