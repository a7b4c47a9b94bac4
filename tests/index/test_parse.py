"""The columnar parser (parse_block, parse_chunk) against its pure-Python
reference on every real block and on synthetic segwit blocks; txids rebuild
each header's merkle root; chunks parse to the columns of the whole block;
malformed input (truncations, garbage, lying counts, mutations) gets the
preprocessor's typed error, or the reference's columns when it is valid."""

from __future__ import annotations

import hashlib
import random
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool._core import row_pairs
from peerpool.bitcoin import BlockChunker, merkle_root, tx_offsets
from peerpool.errors import BlockFormatError, ChunkOffsetsError, InputError, PeerpoolError
from peerpool.index.parse import COLUMNS, parse_block, parse_chunk
from tests.bitcoin import synthetic
from tests.bitcoin.test_txscan import mutate
from tests.reference import bitcoin as ref
from tests.reference.bitcoin import parse as ref_parse

REAL = synthetic.real_blocks()


def segwit_block(seed: int, count: int = 60) -> bytes:
    rng = random.Random(seed)
    coinbase = synthetic.serialize_tx(
        [synthetic.TxIn(bytes(32) + b"\xff\xff\xff\xff", b"\x01\x02")], [(50, b"\x51")]
    )
    txs = [coinbase] + [synthetic.random_tx(rng, segwit=i % 2 == 0) for i in range(count)]
    return synthetic.block(txs)


def assert_same(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert sorted(ours) == sorted(COLUMNS) == sorted(theirs)
    for key in COLUMNS:
        assert ours[key].dtype == theirs[key].dtype, key
        assert ours[key].shape == theirs[key].shape, key
        assert np.array_equal(ours[key], theirs[key]), key


@pytest.mark.parametrize("name", [*sorted(REAL)[::8], "277647.dat#0", "testnet_block.raw"])
def test_real_blocks_equal_the_reference_and_rebuild_the_merkle_root(name: str) -> None:
    block = REAL[name]
    cols = parse_block(block)
    assert_same(cols, ref_parse.parse_block(block))
    assert merkle_root(cols["tx_txid"]) == block[36:68]
    assert cols["tx_offset"].tolist() == tx_offsets(block).tolist()
    assert int(cols["in_coinbase"].sum()) == 1 and bool(cols["in_coinbase"][0])


def test_every_real_block_rebuilds_its_merkle_root() -> None:
    for name, block in REAL.items():
        assert merkle_root(parse_block(block)["tx_txid"]) == block[36:68], name


@pytest.mark.parametrize("seed", range(4))
def test_segwit_blocks_leave_the_witness_out_of_txids(seed: int) -> None:
    block = segwit_block(seed)
    cols = parse_block(block)
    assert_same(cols, ref_parse.parse_block(block))
    assert merkle_root(cols["tx_txid"]) == block[36:68]
    # sizes include the witness, txids do not
    spans = ref.scan_block(block)
    assert cols["tx_size"].tolist() == [s.end - s.start for s in spans]
    assert sum(s.witness_start is not None for s in spans) >= seed + 10


# Script and transaction lengths around the SHA-256 block edges: a message of
# up to 55 bytes is one block (hashed sixteen at a time), 56-119 two, and so on.
EDGE_LENGTHS = [0, 1, 22, 25, 34, 54, 55, 56, 57, 63, 64, 65, 119, 120, 183, 184, 300]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(EDGE_LENGTHS) | st.integers(0, 400), min_size=1, max_size=5),
            st.booleans(),
        ),
        min_size=0,
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_batched_hashes_equal_hashlib_on_every_length_and_count(
    txs: list[tuple[list[int], bool]], rng: random.Random
) -> None:
    # Transactions hashed many at once: any count of transactions (partial
    # groups of lanes), output scripts of every length class, segwit or not.
    coinbase = synthetic.serialize_tx(
        [synthetic.TxIn(bytes(32) + b"\xff\xff\xff\xff", b"\x01\x02")], [(50, b"\x51")]
    )
    body = [coinbase]
    for script_lens, segwit in txs:
        inputs = [synthetic.TxIn(rng.randbytes(36), rng.randbytes(rng.choice(EDGE_LENGTHS)))]
        outputs = [(rng.getrandbits(40), rng.randbytes(n)) for n in script_lens]
        witness = [[rng.randbytes(rng.choice([0, 33, 72]))]] if segwit else None
        body.append(synthetic.serialize_tx(inputs, outputs, witness))
    block = synthetic.block(body)
    cols = parse_block(block)
    assert_same(cols, ref_parse.parse_block(block))
    assert merkle_root(cols["tx_txid"]) == block[36:68]
    at, lengths = cols["out_script_offset"], cols["out_script_len"]
    for row, digest in enumerate(cols["out_script_hash"]):
        script = block[int(at[row]) : int(at[row] + lengths[row])]
        assert bytes(digest) == hashlib.sha256(script).digest()


def test_bsv_style_block_read_without_witness() -> None:
    block = REAL["277647.dat#0"]
    assert_same(parse_block(block, allow_witness=False), ref_parse.parse_block(block, False))


def test_values_scripts_and_outpoints_are_where_the_columns_say() -> None:
    block = REAL["277647.dat#0"]
    c = parse_block(block)
    rng = random.Random(1)
    for row in rng.sample(range(len(c["out_value"])), 50):
        at, n = int(c["out_script_offset"][row]), int(c["out_script_len"][row])
        (value,) = struct.unpack_from("<q", block, at - 8 - len(ref.write_compact_size(n)))
        assert value == int(c["out_value"][row])
        assert bytes(c["out_script_hash"][row]) == hashlib.sha256(block[at : at + n]).digest()
    txids = {bytes(t) for t in c["tx_txid"]}
    # some inputs of a real block spend outputs of earlier transactions of the same block
    assert any(bytes(p) in txids for p in c["in_prev_txid"]) or len(txids) > 100


def test_columns_are_handed_over_once_read_only_moved_or_copied() -> None:
    # 3,000 transactions: the txid column (96 KB) is moved into numpy, the
    # small ones are copied; either way each key gives one read-only array
    block = segwit_block(11, count=3000)
    cols = parse_block(block)
    txid = cols["tx_txid"]
    assert txid.nbytes > 64 << 10 and cols["in_coinbase"].nbytes < 64 << 10
    for key in COLUMNS:
        assert cols[key] is cols[key], key
        assert not cols[key].flags.writeable, key
        with pytest.raises(ValueError):
            cols[key][:1] = 0
    assert cols.counts == (len(txid), len(cols["out_value"]), len(cols["in_tx"]))
    assert_same(cols.to_dict(), ref_parse.parse_block(block))
    assert merkle_root(txid) == block[36:68]


def test_row_pairs_slice_fixed_width_rows() -> None:
    keys, values = bytes(range(12)), bytes(range(100, 118))
    assert row_pairs(keys, 3, values, 6, 0, 3) == [
        (keys[i * 3 : i * 3 + 3], values[i * 6 : i * 6 + 6]) for i in range(3)
    ]
    assert row_pairs(keys, 3, values, 6, 1, 2) == [(keys[3:6], values[6:12])]
    assert row_pairs(keys, 3, values, 6, 2, 2) == []
    for start, stop in [(0, 4), (2, 1)]:  # past the 3 rows both buffers hold; backwards
        with pytest.raises(InputError):
            row_pairs(keys, 3, values, 6, start, stop)
    with pytest.raises(InputError):
        row_pairs(keys, 0, values, 6, 0, 0)


def test_chunks_parse_to_the_columns_of_the_whole_block() -> None:
    block = segwit_block(7, count=400)
    whole = parse_block(block)
    chunker = BlockChunker(len(block), chunk_size=4096)
    chunks = chunker.feed(block)
    assert len(chunks) > 5
    txids, outputs, spent = [], 0, []
    for chunk in chunks:
        cols = parse_chunk(chunk)
        assert cols["tx_offset"].tolist() == chunk.tx_offsets.tolist()
        assert_same(cols, parse_chunk(bytes(chunk.data), chunk.tx_offsets))
        assert_same(cols, ref_parse.parse_chunk(bytes(chunk.data), chunk.tx_offsets.tolist()))
        txids.append(cols["tx_txid"])
        outputs += len(cols["out_value"])
        spent.append(cols["in_prev_txid"])
    assert np.array_equal(np.concatenate(txids), whole["tx_txid"])
    assert np.array_equal(np.concatenate(spent), whole["in_prev_txid"])
    assert outputs == len(whole["out_value"])


def test_offsets_that_do_not_delimit_the_data_are_a_typed_error() -> None:
    block = REAL["277647.dat#0"]
    offsets = tx_offsets(block)
    data = block[int(offsets[0]) :]
    bad = offsets.copy()
    bad[5] += 1
    for args in [(data, bad), (data, offsets[:-1]), (data, offsets[::-1]), (b"abc", [])]:
        with pytest.raises(ChunkOffsetsError) as info:
            parse_chunk(*args)
        assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    with pytest.raises(InputError):
        parse_chunk(data)  # bytes without offsets
    assert parse_chunk(b"", [])["tx_txid"].shape == (0, 32)


def test_every_prefix_is_the_preprocessors_error() -> None:
    block = segwit_block(3, count=30)
    for cut in range(0, len(block), 7):
        with pytest.raises(BlockFormatError) as ours:
            parse_block(block[:cut])
        with pytest.raises(BlockFormatError) as scan:
            tx_offsets(block[:cut])
        assert type(ours.value) is type(scan.value)
        assert ours.value.offset == scan.value.offset


def test_lying_counts_fail_before_allocating() -> None:
    """A block that claims 2**63 transactions, a transaction that claims 2**32
    inputs or a 4 GiB script: a typed error at once, no MemoryError."""
    block = bytearray(REAL["277647.dat#0"])
    head = bytes(block[:80])
    for count in (2**63, 2**32, 10**6):
        lying = head + ref.write_compact_size(count) + bytes(block[83:])
        with pytest.raises(BlockFormatError):
            parse_block(lying)
    tx = synthetic.sized_tx(200)
    for field_at, value in ((4, 2**32), (4 + 1 + 36, 2**32)):  # input count, script length
        bad = tx[:field_at] + ref.write_compact_size(value) + tx[field_at + 1 :]
        with pytest.raises(BlockFormatError):
            parse_block(synthetic.header(bytes(32)) + b"\x01" + bad)
        with pytest.raises(BlockFormatError):
            parse_chunk(bad, [1000])


def kernel_verdict(block: bytes) -> dict[str, Any] | None:
    try:
        return parse_block(block)
    except BlockFormatError as exc:
        assert isinstance(exc, PeerpoolError) and exc.offset is not None
        return None


def reference_verdict(block: bytes) -> dict[str, Any] | None:
    try:
        return ref_parse.parse_block(block)
    except ref.Rejected:
        return None


def test_mutated_blocks_give_the_reference_verdict() -> None:
    rng = random.Random(11)
    seeds = [REAL["blk_0_to_4.dat#1"], REAL["testnet_block.raw"], segwit_block(1, 8)]
    outcomes = {"accepted": 0, "rejected": 0}
    for _ in range(2000):
        block = mutate(rng, rng.choice(seeds))
        ours, theirs = kernel_verdict(block), reference_verdict(block)
        assert (ours is None) == (theirs is None), block.hex()
        if ours is not None and theirs is not None:
            assert_same(ours, theirs)
        outcomes["accepted" if ours is not None else "rejected"] += 1
    assert min(outcomes.values()) > 100, outcomes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_is_a_typed_error_or_the_reference_columns(data: bytes) -> None:
    block = synthetic.header(bytes(32)) + data
    ours, theirs = kernel_verdict(block), reference_verdict(block)
    assert (ours is None) == (theirs is None)
    if ours is not None and theirs is not None:
        assert_same(ours, theirs)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.lists(st.integers(0, 2**64 - 1), max_size=5))
def test_garbage_chunks_are_typed_errors(data: bytes, offsets: list[int]) -> None:
    try:
        cols = parse_chunk(data, offsets)
    except (BlockFormatError, ChunkOffsetsError):
        return
    # accepted: then the reference accepts it the same way
    assert_same(cols, ref_parse.parse_chunk(data, offsets))
