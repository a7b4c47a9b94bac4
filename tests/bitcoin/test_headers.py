"""Header kernels: hashing, compact bits <-> target (with Bitcoin Core's edge
cases), proof of work and the batch check, on the real headers and against
the pure-Python reference."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from peerpool.bitcoin import (
    BlockHeader,
    bits_to_target,
    check_headers,
    check_pow,
    hash_header,
    hash_headers,
    target_to_bits,
)
from peerpool.bitcoin.headers import work_of_bits
from peerpool.errors import HeaderError
from tests.bitcoin import synthetic
from tests.reference import bitcoin as ref

GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
LIMIT = synthetic.MAINNET_POW_LIMIT

BLOCKS_0_TO_4 = synthetic.blk_records(synthetic.DATA_DIR / "blk_0_to_4.dat")
HEIGHTS_1_TO_255 = synthetic.blk_records(synthetic.DATA_DIR / "blocks1-256")
FORK = [synthetic.blk_records(synthetic.DATA_DIR / f"blk_{n}A.dat")[0] for n in (3, 4, 5)]
# mainnet's genesis and heights 1-255
MAIN_CHAIN = b"".join(b[:80] for b in [BLOCKS_0_TO_4[0], *HEIGHTS_1_TO_255])
# blk_0_to_4.dat: genesis then four real-PoW blocks of another branch (not
# mainnet's blocks 1-4); 3A-5A fork off its block 2
SIDE_CHAIN = b"".join(b[:80] for b in BLOCKS_0_TO_4)
FORK_CHAIN = b"".join(b[:80] for b in [*BLOCKS_0_TO_4[:3], *FORK])
ALL_HEADERS = [b[:80] for b in synthetic.real_blocks().values()]


def test_genesis() -> None:
    genesis = BLOCKS_0_TO_4[0][:80]
    assert hash_header(genesis)[::-1].hex() == GENESIS_HASH
    fields = BlockHeader.parse(genesis)
    assert (fields.version, fields.timestamp, fields.bits, fields.nonce) == (
        1,
        1231006505,
        0x1D00FFFF,
        2083236893,
    )
    assert fields.serialize() == genesis
    assert work_of_bits(fields.bits) == 0x1_0001_0001  # Core's chainwork of the genesis block


def test_the_data_is_three_branches_from_genesis() -> None:
    assert len(MAIN_CHAIN) == 256 * 80 and len(FORK_CHAIN) == 6 * 80
    genesis_hash = hash_header(MAIN_CHAIN[:80])
    assert BLOCKS_0_TO_4[1][4:36] == HEIGHTS_1_TO_255[0][4:36] == genesis_hash
    assert BLOCKS_0_TO_4[1][:80] != HEIGHTS_1_TO_255[0][:80]


def test_hashes_equal_the_reference() -> None:
    buf = b"".join(ALL_HEADERS)
    hashes = hash_headers(buf)
    assert hashes.shape == (len(ALL_HEADERS), 32)
    assert [bytes(h) for h in hashes] == [ref.hash_header(h) for h in ALL_HEADERS]
    assert [hash_header(h) for h in ALL_HEADERS] == [bytes(h) for h in hashes]


def test_every_real_header_has_proof_of_work() -> None:
    for header in ALL_HEADERS:
        check_pow(header, LIMIT)
        assert ref.check_pow(header, LIMIT) is None


@pytest.mark.parametrize(
    "chain", [MAIN_CHAIN, SIDE_CHAIN, FORK_CHAIN], ids=["main", "side", "fork"]
)
def test_real_chains_pass_the_batch_check(chain: bytes) -> None:
    result = check_headers(chain, bytes(32), LIMIT)
    assert result.ok and (result.failed_index, result.reason, result.message) == (None,) * 3
    assert [bytes(h) for h in result.hashes] == ref.check_headers(chain)[0]


def test_batches_chain_through_prev_hash() -> None:
    rng = random.Random(4)
    prev, pos = bytes(32), 0
    while pos < len(MAIN_CHAIN):
        n = rng.randint(1, 40) * 80
        result = check_headers(MAIN_CHAIN[pos : pos + n], prev, LIMIT)
        assert result.ok
        prev, pos = bytes(result.hashes[-1]), pos + n
    fork_parent = hash_header(BLOCKS_0_TO_4[2][:80])
    assert check_headers(b"".join(f[:80] for f in FORK), fork_parent, LIMIT).ok
    wrong_parent = check_headers(b"".join(f[:80] for f in FORK), hash_header(BLOCKS_0_TO_4[3][:80]))
    assert (wrong_parent.failed_index, wrong_parent.reason) == (0, "prev-blk-not-found")


def tamper(chain: bytes, index: int, offset: int, value: bytes) -> bytes:
    data = bytearray(chain)
    at = index * 80 + offset
    data[at : at + len(value)] = value
    return bytes(data)


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (4, b"\x01", "prev-blk-not-found"),  # linkage
        (76, b"\x00\x00\x00\x00", "high-hash"),  # nonce: the hash misses the target
        (36, b"\x5a", "high-hash"),  # merkle root
        (72, struct.pack("<I", 0x207FFFFF), "bits-above-pow-limit"),
        (72, struct.pack("<I", 0x1C92FFFF), "bits-negative"),
        (72, struct.pack("<I", 0xFF123456), "bits-overflow"),
        (72, struct.pack("<I", 0x1D000000), "bits-zero"),
    ],
)
def test_tampered_header_is_named_with_its_reason(offset: int, value: bytes, reason: str) -> None:
    for index in (0, 1, 100, 255):
        chain = tamper(MAIN_CHAIN, index, offset, value)
        prev = bytes(32) if offset == 4 and index == 0 else None
        result = check_headers(chain, prev, LIMIT)
        assert (result.failed_index, result.reason) == (index, reason)
        assert result.message
        assert len(result.hashes) == 256  # every hash, so the good prefix need not be rehashed
        _, ref_index, ref_reason = ref.check_headers(chain, prev, LIMIT)
        assert (ref_index, ref_reason) == (index, reason)


def test_bad_lengths_are_header_errors() -> None:
    for n in (1, 79, 81, 159):
        with pytest.raises(HeaderError):
            check_headers(MAIN_CHAIN[:n])
        with pytest.raises(HeaderError):
            hash_headers(MAIN_CHAIN[:n])
    for n in (0, 79, 81):
        with pytest.raises(HeaderError):
            hash_header(MAIN_CHAIN[:n])
        with pytest.raises(HeaderError):
            check_pow(MAIN_CHAIN[:n])
    assert check_headers(b"").ok


def test_bad_arguments_are_header_errors() -> None:
    with pytest.raises(HeaderError):
        check_headers(MAIN_CHAIN[:80], prev_hash=b"short")
    with pytest.raises(HeaderError):
        check_headers(MAIN_CHAIN[:80], pow_limit=1 << 256)
    with pytest.raises(HeaderError):
        target_to_bits(-1)


# Bitcoin Core's src/test/arith_uint256_tests.cpp: (bits, target, GetCompact of
# the target). None: CheckProofOfWork refuses these bits.
CORE_COMPACT = [
    (0x00000000, None, None),
    (0x00123456, None, None),
    (0x01003456, None, None),
    (0x02000056, None, None),
    (0x03000000, None, None),
    (0x04000000, None, None),
    (0x00923456, None, None),
    (0x01803456, None, None),
    (0x02800056, None, None),
    (0x03800000, None, None),
    (0x04800000, None, None),
    (0x01123456, 0x12, 0x01120000),
    (0x02123456, 0x1234, 0x02123400),
    (0x03123456, 0x123456, 0x03123456),
    (0x04123456, 0x12345600, 0x04123456),
    (0x05009234, 0x92340000, 0x05009234),
    (0x20123456, 0x123456 << 232, 0x20123456),
    (0x01FEDCBA, None, None),  # negative
    (0x04923456, None, None),  # negative
    (0xFF123456, None, None),  # overflow
    (0x1D00FFFF, 0xFFFF << 208, 0x1D00FFFF),
    (0x207FFFFF, 0x7FFFFF << 232, 0x207FFFFF),
]


@pytest.mark.parametrize(("bits", "target", "compact"), CORE_COMPACT)
def test_core_compact_vectors(bits: int, target: int | None, compact: int | None) -> None:
    if target is None:
        with pytest.raises(HeaderError):
            bits_to_target(bits)
        assert ref.bits_problem(bits) is not None
    else:
        assert bits_to_target(bits) == target == ref.set_compact(bits)[0]
        assert target_to_bits(target) == compact == ref.get_compact(target)


def test_get_compact_moves_the_sign_bit_out_of_the_mantissa() -> None:
    assert target_to_bits(0x80) == 0x02008000  # Core: SetHex("80").GetCompact()
    assert target_to_bits(0) == 0


def _header_with_bits(bits: int) -> bytes:
    return synthetic.header(bytes(32), bits=bits)


@given(st.integers(0, 2**32 - 1))
# the largest exponents, where Core's overflow rule depends on the mantissa
@example(0x22000001)
@example(0x220000FF)
@example(0x22000100)
@example(0x2100FFFF)
@example(0x21010000)
@example(0x23000001)
def test_bits_to_target_equals_core(bits: int) -> None:
    target, negative, overflow = ref.set_compact(bits)
    if negative or overflow or target == 0:
        with pytest.raises(HeaderError):
            bits_to_target(bits)
    else:
        assert bits_to_target(bits) == target
        assert target_to_bits(target) == ref.get_compact(target)


@given(st.integers(0, 2**32 - 1))
@example(0x01803456)  # Core: mantissa shifted out, so not negative but zero
@example(0x00FFFFFF)
def test_refusal_reason_equals_cores_flags(bits: int) -> None:
    """Core's SetCompact shifts the mantissa right first when the exponent is 3
    or less and tests the sign on what is left, so 0x01803456 encodes zero, not
    a negative number (arith_uint256_tests: fNegative false). Both refuse the
    bits; the reason code must be Core's."""
    result = check_headers(_header_with_bits(bits))
    problem = ref.bits_problem(bits)
    if problem is not None:
        assert result.reason == problem
    else:
        assert result.reason in (None, "high-hash")


# targets of every bit length, not just the 256-bit ones a uniform draw gives
@given(st.integers(0, 256).flatmap(lambda n: st.integers(0, 2**n - 1)))
def test_target_to_bits_equals_core(target: int) -> None:
    compact = target_to_bits(target)
    assert compact == ref.get_compact(target)
    # compact encodings round down: never above the target
    assert target == 0 or ref.set_compact(compact)[0] <= target


def _mutate(rng: random.Random, chain: bytes) -> bytes:
    data = bytearray(chain[: 80 * rng.randint(1, 12)])
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(4)
        if op == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1 and len(data) >= 80:
            at = rng.randrange(len(data) // 80) * 80 + 72
            data[at : at + 4] = rng.getrandbits(32).to_bytes(4, "little")
        elif op == 2:
            del data[rng.randint(0, len(data)) :]
        else:
            data = bytearray(rng.randbytes(80 * rng.randint(0, 3) + rng.choice([0, 0, 0, 7])))
    return bytes(data)


def _coarse(reason: str | None) -> str | None:
    # which refusal of the bits is reported is test_refusal_reason_equals_cores_flags's job
    return "bits-invalid" if reason in ("bits-negative", "bits-overflow", "bits-zero") else reason


def test_mutated_batches_give_the_reference_verdict() -> None:
    rng = random.Random(6)
    reasons: set[str | None] = set()
    for _ in range(4000):
        chain = _mutate(rng, rng.choice([MAIN_CHAIN, SIDE_CHAIN, FORK_CHAIN]))
        limit = rng.choice([None, LIMIT])
        try:
            expected = ref.check_headers(chain, None, limit)
        except ref.Rejected:
            with pytest.raises(HeaderError):
                check_headers(chain, None, limit)
            continue
        result = check_headers(chain, None, limit)
        assert [bytes(h) for h in result.hashes] == expected[0]
        assert result.failed_index == expected[1], chain.hex()
        assert _coarse(result.reason) == _coarse(expected[2]), chain.hex()
        reasons.add(result.reason)
    assert {None, "high-hash", "prev-blk-not-found"} <= reasons
