"""The block builder without a node: structure, offsets, merkle root and proof of work.

Checked against the pure-Python reference parser in tests/reference (shared with
the kernels' tests) and against a real mainnet block. The node-side half
(the node accepting these blocks) is in tests/integration/bitcoin.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.bitcoin.headers import bits_to_target
from peerpool.bitcoin.networks import get_network, sha256d
from peerpool.encoding import compact_size
from peerpool.errors import InputError
from peerpool.testing.blocks import (
    MIN_PAD_TX_SIZE,
    ChainTip,
    build_block,
    grind_header,
    merkle_root,
    pad_tx_size,
)
from peerpool.testing.transactions import (
    COIN,
    Coin,
    block_subsidy,
    coinbase_tx,
    coinbase_values,
    invalid_tx,
    malformed_tx,
    mempool_tx,
    push_prefix,
    script_number,
)
from tests.reference import bitcoin as reference

DATA = Path(__file__).resolve().parents[2] / "../shared/data"
REGTEST = get_network("bsv-regtest")
TIP = ChainTip(hash=REGTEST.genesis_hash, height=0, time=1_296_688_602, bits=0x207FFFFF)
COIN_A = Coin(b"\x11" * 32, 0, 50 * COIN)


def test_merkle_root_of_a_real_block() -> None:
    raw = (DATA / "277647.dat").read_bytes()[8:]  # after the blk-file magic and length
    spans = reference.scan_block(raw, allow_witness=False)
    txids = [reference.txid_of(raw, span) for span in spans]
    assert len(txids) > 100
    assert merkle_root(txids) == raw[36:68]


def test_merkle_root_duplicates_an_odd_last_node() -> None:
    a, b, c = (bytes([i]) * 32 for i in (1, 2, 3))
    assert merkle_root([a]) == a
    assert merkle_root([a, b, c]) == sha256d(sha256d(a + b) + sha256d(c + c))
    with pytest.raises(InputError):
        merkle_root([])


def check_block(
    block_raw: bytes, tip: ChainTip, offsets: list[int], txids: tuple[bytes, ...]
) -> None:
    assert reference.tx_offsets(block_raw, allow_witness=False) == offsets
    assert [reference.txid(block_raw[o:], allow_witness=False) for o in offsets] == list(txids)
    header = block_raw[:80]
    _version, prev, root, _time, bits, _nonce = struct.unpack("<i32s32sIII", header)
    assert prev == tip.hash
    assert root == merkle_root(txids)
    assert bits == tip.bits
    assert int.from_bytes(sha256d(header), "little") <= bits_to_target(bits)


@settings(deadline=None, max_examples=25)
@given(
    target=st.integers(0, 300_000),
    sizes=st.tuples(st.integers(MIN_PAD_TX_SIZE, 5_000), st.integers(0, 70_000)),
    seed=st.integers(0, 2**32),
)
def test_built_block_structure(target: int, sizes: tuple[int, int], seed: int) -> None:
    low = sizes[0]
    high = low + sizes[1]
    block = build_block(TIP, COIN_A, target, min_tx_size=low, max_tx_size=high, seed=seed, now=0)
    raw = bytes(block.raw)
    assert block.size >= target
    offsets = block.tx_offsets.tolist()
    check_block(raw, TIP, offsets, block.txids)
    assert block.height == 1
    ends = [*offsets[1:], len(raw)]
    for index, (start, end) in enumerate(zip(offsets, ends, strict=True)):
        tx = raw[start:end]
        if index == 0:
            continue
        assert low - 3 <= len(tx) <= high  # a size can land a few bytes under its draw
        # each transaction spends output 0 of the one before (the first spends the coin)
        spent = tx[5:41]
        previous = COIN_A.txid if index == 1 else block.txids[index - 1]
        assert spent == previous + b"\x00\x00\x00\x00"
    assert block.change == Coin(block.txids[-1], 0, COIN_A.value)


def test_coinbase_only_block_pays_the_subsidy_in_op_true_outputs() -> None:
    block = build_block(TIP, coinbase_outputs=7, now=0)
    assert len(block.txids) == 1 and block.change is None
    check_block(bytes(block.raw), TIP, [int(block.tx_offsets[0])], block.txids)
    values = coinbase_values(50 * COIN, 7)
    assert sum(values) == 50 * COIN and len(values) == 7


def test_block_time_is_after_the_tip_even_when_the_tip_is_ahead_of_the_clock() -> None:
    ahead = ChainTip(TIP.hash, 10, time=2_000_000_000, bits=TIP.bits)
    block = build_block(ahead, now=1_000_000_000)
    assert struct.unpack_from("<I", block.raw, 68)[0] == 2_000_000_001
    block = build_block(ahead, now=2_100_000_000)
    assert struct.unpack_from("<I", block.raw, 68)[0] == 2_100_000_000


def test_grinding_meets_the_target() -> None:
    header = grind_header(bytes(76), 0x207FFFFF)
    assert header[:76] == bytes(76)
    assert int.from_bytes(sha256d(header), "little") <= bits_to_target(0x207FFFFF)


@pytest.mark.parametrize("pad", [0, 75, 76, 255, 256, 65_535, 65_536, 200_000])
def test_pad_tx_size_is_exact_across_push_opcodes(pad: int) -> None:
    # a padding transaction is version, input, OP_TRUE output, OP_RETURN output, lock time
    script = b"\x00\x6a" + push_prefix(pad) + bytes(pad)
    tx = (
        struct.pack("<i", 1)
        + b"\x01"
        + bytes(32) + bytes(4) + b"\x00" + b"\xff" * 4
        + b"\x02"
        + struct.pack("<q", 1) + b"\x01\x51"
        + struct.pack("<q", 0) + compact_size(len(script)) + script
        + bytes(4)
    )  # fmt: skip
    assert reference.txid(tx, allow_witness=False) == sha256d(tx)  # it parses
    assert pad_tx_size(pad) == len(tx)


def test_transaction_helpers_parse() -> None:
    for tx in (mempool_tx(COIN_A), invalid_tx(COIN_A), coinbase_tx(5, 50 * COIN, 3)):
        span = reference.parse_tx(tx, 0, allow_witness=False)
        assert (span.start, span.end) == (0, len(tx))
    with pytest.raises(reference.Rejected):
        reference.parse_tx(malformed_tx(), 0, allow_witness=False)
    # the invalid one pays out one satoshi more than it spends
    assert struct.unpack_from("<q", invalid_tx(COIN_A), 47)[0] == COIN_A.value + 1


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b""),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x00"),
        (255, b"\xff\x00"),
        (256, b"\x00\x01"),
    ],
)
def test_script_numbers(value: int, encoded: bytes) -> None:
    assert script_number(value) == encoded


@given(st.integers(0, 2**64 - 1))
def test_compact_size_matches_the_reference(value: int) -> None:
    assert compact_size(value) == reference.write_compact_size(value)


def test_subsidy_halves_every_150_blocks_on_regtest() -> None:
    assert block_subsidy(149, 150) == 50 * COIN
    assert block_subsidy(150, 150) == 25 * COIN
    assert block_subsidy(150 * 64, 150) == 0


def test_bad_arguments_are_input_errors() -> None:
    with pytest.raises(InputError):
        build_block(TIP, COIN_A, 1000, min_tx_size=10)
    with pytest.raises(InputError):
        build_block(TIP, COIN_A, 1000, max_tx_size=1_000_000)
    with pytest.raises(InputError):
        coinbase_tx(1, 1, 0)
