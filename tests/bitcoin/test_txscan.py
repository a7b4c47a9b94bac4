"""Transaction preprocessor (tx_offsets, TxScanner) on every real block, on
synthetic segwit blocks and on thousands of mutated blocks, against the
pure-Python reference. The end-to-end check: the transactions the offsets
delimit hash to the merkle root in the header."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from peerpool.bitcoin import TxScanner, block_txids, merkle_root, tx_offsets
from peerpool.errors import (
    BlockFormatError,
    MalformedBlockError,
    PeerpoolError,
    TruncatedBlockError,
    TxCountMismatchError,
)
from tests.bitcoin import synthetic
from tests.reference import bitcoin as ref

REAL = synthetic.real_blocks()
# one byte at a time on every 16th block and on the two largest
ONE_BYTE_AT_A_TIME = {*sorted(REAL)[::16], "277647.dat#0", "testnet_block.raw"}


def test_the_shared_data_is_all_there() -> None:
    assert len(REAL) == 5 + 3 + 255 + 1 + 1
    assert sum(len(ref.scan_block(b)) for b in REAL.values()) > 500


def feed_in_pieces(block: bytes, rng: random.Random, one_byte: bool = False) -> TxScanner:
    scanner = TxScanner(len(block))
    pos = 0
    while pos < len(block):
        n = 1 if one_byte else rng.choice([1, 2, 3, 5, 9, 80, 81, 500, rng.randint(1, 70_000)])
        scanner.feed(block[pos : pos + n])
        pos += n
    scanner.finish()
    return scanner


def root_from_offsets(block: bytes, offsets: np.ndarray) -> bytes:
    """Slice the block at the kernel's offsets and hash with the reference."""
    bounds = [*offsets.tolist(), len(block)]
    txs = [block[a:b] for a, b in pairwise(bounds)]
    return ref.merkle_root([ref.txid(tx) for tx in txs])


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_block_offsets_in_random_pieces_rebuild_the_merkle_root(name: str) -> None:
    block = REAL[name]
    rng = random.Random(name)
    scanner = feed_in_pieces(block, rng, name in ONE_BYTE_AT_A_TIME)
    expected = ref.tx_offsets(block)
    assert scanner.offsets.dtype == np.uint64
    assert scanner.offsets.tolist() == expected
    assert tx_offsets(block).tolist() == expected
    assert (scanner.done, scanner.completed, scanner.tx_count) == (
        True,
        len(expected),
        len(expected),
    )
    assert scanner.last_tx_end == scanner.position == len(block)
    assert scanner.header == block[:80]
    assert root_from_offsets(block, scanner.offsets) == block[36:68]
    offsets, txids = block_txids(block)
    assert offsets.tolist() == expected
    assert merkle_root(txids) == block[36:68]


def test_progress_reported_mid_block() -> None:
    block = REAL["277647.dat#0"]
    spans = ref.scan_block(block)
    rng = random.Random(3)
    for cut in [0, 1, 80, 81, 82, *(rng.randrange(len(block)) for _ in range(50))]:
        scanner = TxScanner(len(block))
        scanner.feed(block[:cut])
        complete = [s for s in spans if s.end <= cut]
        # a transaction's offset is known once the one before it ends (the
        # first one's once the count is read)
        started = [s.start for s in spans if s.start <= cut]
        assert scanner.completed == len(complete)
        assert scanner.last_tx_end == (complete[-1].end if complete else 0)
        assert scanner.offsets.tolist() == started[: len(complete) + 1]
        assert scanner.position == cut and not scanner.done


def segwit_block(seed: int, count: int = 40) -> tuple[bytes, list[bytes]]:
    """Legacy and segwit transactions with empty, small and large witness items."""
    rng = random.Random(seed)
    txs = [
        synthetic.random_tx(rng, segwit=rng.random() < 0.7, max_script=300) for _ in range(count)
    ]
    return synthetic.block(txs), txs


@pytest.mark.parametrize("seed", range(5))
def test_segwit_txids_leave_the_witness_out(seed: int) -> None:
    block, txs = segwit_block(seed)
    offsets, txids = block_txids(block)
    expected = [ref.txid(tx) for tx in txs]
    assert [bytes(t) for t in txids] == expected
    assert merkle_root(txids) == block[36:68] == ref.merkle_root(expected)
    # the witness matters: hashing whole segwit transactions gives other ids
    assert any(ref.sha256d(tx) != t for tx, t in zip(txs, expected, strict=True))
    assert offsets.tolist() == ref.tx_offsets(block)
    assert (
        feed_in_pieces(block, random.Random(seed), one_byte=seed == 0).offsets.tolist()
        == offsets.tolist()
    )


def test_segwit_block_without_witness_support_is_refused_or_read_otherwise() -> None:
    block, _ = segwit_block(9)
    try:
        offsets = tx_offsets(block, allow_witness=False)
    except BlockFormatError:
        return
    assert offsets.tolist() != ref.tx_offsets(block)


def test_no_inputs_and_flag_zero_is_an_empty_transaction() -> None:
    """Core reads a zero flag after an empty input vector as an empty output vector."""
    empty = bytes.fromhex("02000000000000000000")
    block = synthetic.header(bytes(32)) + b"\x02" + empty + empty
    assert tx_offsets(block).tolist() == ref.tx_offsets(block) == [81, 91]


def test_unknown_segwit_flag_is_malformed_at_the_flag() -> None:
    tx = bytes.fromhex("020000000002") + bytes(20)
    with pytest.raises(MalformedBlockError) as info:
        tx_offsets(synthetic.header(bytes(32)) + b"\x01" + tx)
    assert info.value.offset == 81 + 5


def block_of(*txs: bytes, count: int | None = None) -> bytes:
    n = len(txs) if count is None else count
    return synthetic.header(bytes(32)) + ref.write_compact_size(n) + b"".join(txs)


def test_count_mismatches() -> None:
    tx = synthetic.sized_tx(100)
    with pytest.raises(TxCountMismatchError) as info:
        tx_offsets(block_of(tx, tx, count=3))
    assert info.value.offset == 81 + 200
    with pytest.raises(TxCountMismatchError) as info:
        tx_offsets(block_of(tx, tx, count=1))
    assert info.value.offset == 81 + 100
    with pytest.raises(MalformedBlockError):
        tx_offsets(block_of(tx, count=0))


def test_non_minimal_length_is_malformed_where_it_starts() -> None:
    tx = bytearray(synthetic.sized_tx(100))
    # the input script length (one byte at offset 41) as a 3-byte encoding
    tx[41:42] = b"\xfd" + tx[41:42] + b"\x00"
    with pytest.raises(MalformedBlockError, match="non-minimal") as info:
        tx_offsets(block_of(bytes(tx)))
    assert info.value.offset == 81 + 41


def test_limits_are_checked_before_the_data_arrives() -> None:
    """A count or length that cannot fit in the announced block size is refused
    as soon as it is read, not after waiting for (or allocating) its bytes."""
    scanner = TxScanner(1000)
    with pytest.raises(MalformedBlockError):
        scanner.feed(synthetic.header(bytes(32)) + b"\xff" + (2**64 - 1).to_bytes(8, "little"))
    tx = synthetic.sized_tx(100)
    scanner = TxScanner(5000)
    with pytest.raises(MalformedBlockError, match="past the end"):
        scanner.feed(block_of(tx)[: 81 + 41] + b"\xfe\x00\x00\x00\x01")  # a 16 MiB script
    with pytest.raises(MalformedBlockError):  # a failed scanner stays failed
        scanner.feed(b"\x00")


def test_bytes_past_the_block_size_are_refused() -> None:
    block = block_of(synthetic.sized_tx(100))
    scanner = TxScanner(len(block))
    scanner.feed(block)
    with pytest.raises(TxCountMismatchError):
        scanner.feed(b"\x00")


def test_every_prefix_of_a_block_is_a_typed_error_where_it_ends() -> None:
    block, _ = segwit_block(1, count=4)
    for blk in (REAL["blk_0_to_4.dat#0"], block):
        for cut in range(len(blk)):
            with pytest.raises(BlockFormatError) as info:
                tx_offsets(blk[:cut])
            assert info.value.offset is not None and info.value.offset <= cut
            scanner = TxScanner()  # no size given: only finish() can tell
            scanner.feed(blk[:cut])
            with pytest.raises((TruncatedBlockError, TxCountMismatchError)) as info:
                scanner.finish()
            assert info.value.offset == cut


def test_buffers_of_any_kind_are_accepted() -> None:
    block = REAL["277647.dat#0"]
    expected = tx_offsets(block).tolist()
    buffers: list[Any] = [bytearray(block), memoryview(block), np.frombuffer(block, np.uint8)]
    for buf in buffers:
        assert tx_offsets(buf).tolist() == expected


def mutate(rng: random.Random, block: bytes) -> bytes:
    data = bytearray(block)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        at = rng.randrange(80, len(data)) if len(data) > 80 else 0
        if op == 0 and data:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[rng.randint(0, len(data)) :]
        elif op == 2:  # a CompactSize of any width where a length may be
            data[at : at + 1] = ref.write_compact_size(rng.getrandbits(rng.choice([8, 16, 32, 64])))
        elif op == 3:
            data[at:at] = rng.randbytes(rng.randint(1, 40))
        elif op == 4:
            del data[at : at + rng.randint(1, 40)]
        else:
            data = bytearray(data[:81] + rng.randbytes(rng.randint(0, 300)))
    return bytes(data)


def reference_verdict(block: bytes) -> list[int] | None:
    try:
        return ref.tx_offsets(block)
    except ref.Rejected:
        return None


def _scan_in_pieces(block: bytes, size: int | None, rng: random.Random) -> list[int]:
    scanner = TxScanner(size)
    for pos in range(0, len(block), step := rng.randint(1, 200)):
        scanner.feed(memoryview(block)[pos : pos + step])
    scanner.finish()
    return scanner.offsets.tolist()


def kernel_verdicts(block: bytes, rng: random.Random) -> list[Any]:
    """tx_offsets, the scanner with the size and the scanner without it, fed
    in random pieces: offsets, or None after a typed error."""
    verdicts: list[Any] = []
    entry_points: list[Callable[[], list[int]]] = [
        lambda: tx_offsets(bytearray(block)).tolist(),
        lambda: _scan_in_pieces(block, len(block), rng),
        lambda: _scan_in_pieces(block, None, rng),
    ]
    for entry_point in entry_points:
        try:
            verdicts.append(entry_point())
        except BlockFormatError as exc:
            assert isinstance(exc, PeerpoolError) and isinstance(exc, ValueError)
            assert exc.offset is not None and 0 <= exc.offset <= len(block)
            verdicts.append(None)
    return verdicts


def test_mutated_blocks_give_the_reference_verdict() -> None:
    """Thousands of bit flips, truncations, insertions, deletions, random
    lengths and random bodies: each of the three entry points either finds
    the reference's offsets or raises a typed error where the reference
    rejects the block, never another exception."""
    rng = random.Random(5)
    seeds = [REAL[n] for n in ("blk_0_to_4.dat#1", "blk_3A.dat#0", "testnet_block.raw")]
    seeds += [segwit_block(s, count=6)[0] for s in range(3)]
    outcomes = {"accepted": 0, "rejected": 0}
    for _ in range(5000):
        block = mutate(rng, rng.choice(seeds))
        expected = reference_verdict(block)
        assert kernel_verdicts(block, rng) == [expected] * 3, block.hex()
        outcomes["accepted" if expected else "rejected"] += 1
    assert min(outcomes.values()) > 100, outcomes  # both branches are exercised
