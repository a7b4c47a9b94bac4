"""CompactSize kernel against Core's encoding rules and the pure-Python reference."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool._core import read_compact_size, write_compact_size
from peerpool.errors import CompactSizeError, PeerpoolError
from tests.reference import bitcoin as ref

U64 = st.integers(0, 2**64 - 1)
# Uniform u64 draws almost never hit the 1/3/5/9-byte boundaries, so add them.
BOUNDARIES = [0, 0xFC, 0xFD, 0xFFFF, 0x1_0000, 0xFFFF_FFFF, 0x1_0000_0000, 2**64 - 1]
VALUES = st.one_of(U64, st.sampled_from(BOUNDARIES), st.integers(0, 0x2_0000))

VECTORS = [
    (0, "00"),
    (0xFC, "fc"),
    (0xFD, "fdfd00"),
    (0xFFFF, "fdffff"),
    (0x1_0000, "fe00000100"),
    (0xFFFF_FFFF, "feffffffff"),
    (0x1_0000_0000, "ff0000000001000000"),
    (2**64 - 1, "ffffffffffffffffff"),
]


@pytest.mark.parametrize(("value", "encoding"), VECTORS)
def test_known_encodings(value: int, encoding: str) -> None:
    assert write_compact_size(value).hex() == encoding
    assert read_compact_size(bytes.fromhex(encoding)) == (value, len(encoding) // 2)


@given(VALUES, st.binary(max_size=8), st.binary(max_size=8))
def test_round_trip_with_surrounding_bytes(value: int, before: bytes, after: bytes) -> None:
    encoded = write_compact_size(value)
    assert encoded == ref.write_compact_size(value)
    assert read_compact_size(before + encoded + after, len(before)) == (value, len(encoded))


@given(VALUES, st.sampled_from([3, 5, 9]))
def test_non_minimal_encodings_are_rejected(value: int, width: int) -> None:
    marker = {3: b"\xfd", 5: b"\xfe", 9: b"\xff"}[width]
    if value >= 1 << (8 * (width - 1)):
        return  # does not fit this width at all
    encoded = marker + value.to_bytes(width - 1, "little")
    minimal = len(ref.write_compact_size(value)) == width
    if minimal:
        assert read_compact_size(encoded) == (value, width)
    else:
        with pytest.raises(CompactSizeError, match="non-minimal") as info:
            read_compact_size(b"\x00" + encoded, 1)
        assert info.value.offset == 1


@given(VALUES, U64)
def test_limit(value: int, limit: int) -> None:
    encoded = write_compact_size(value)
    if value <= limit:
        assert read_compact_size(encoded, 0, limit) == (value, len(encoded))
    else:
        with pytest.raises(CompactSizeError, match="limit"):
            read_compact_size(encoded, 0, limit)


def test_core_max_size_limit() -> None:
    max_size = 0x0200_0000  # Core's MAX_SIZE, the usual limit for a length on the wire
    assert read_compact_size(write_compact_size(max_size), 0, max_size)[0] == max_size
    with pytest.raises(CompactSizeError):
        read_compact_size(write_compact_size(max_size + 1), 0, max_size)


@pytest.mark.parametrize("value", BOUNDARIES)
def test_every_truncation_is_a_typed_error_at_the_start(value: int) -> None:
    encoded = write_compact_size(value)
    for cut in range(len(encoded)):
        with pytest.raises(CompactSizeError, match="truncated") as info:
            read_compact_size(b"\xaa\xbb" + encoded[:cut], 2)
        assert info.value.offset == 2


def test_offset_past_the_end_is_truncation() -> None:
    with pytest.raises(CompactSizeError) as info:
        read_compact_size(b"\x01\x02", 5)
    assert info.value.offset == 5


def _verdict_of_reference(data: bytes, offset: int, limit: int) -> tuple[int, int] | str:
    try:
        return ref.read_compact_size(data, offset, limit)
    except ref.Rejected as exc:
        return exc.kind


def test_garbage_gives_the_reference_verdict() -> None:
    """Thousands of random and mutated inputs: the kernel returns what the
    reference returns, or raises a typed error where the reference rejects."""
    rng = random.Random(7)
    kinds = {"truncated": "truncated", "non-minimal": "non-minimal", "too-large": "limit"}
    for _ in range(5000):
        value = rng.choice([*BOUNDARIES, rng.getrandbits(rng.choice([8, 16, 32, 64]))])
        data = bytearray(ref.write_compact_size(value) + rng.randbytes(rng.randint(0, 3)))
        mutation = rng.randrange(4)
        if mutation == 0:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif mutation == 1:
            del data[rng.randrange(len(data)) :]
        elif mutation == 2:
            data = bytearray(rng.randbytes(rng.randint(0, 10)))
        offset = rng.randint(0, 2)
        limit = rng.choice([2**64 - 1, 0x0200_0000, rng.getrandbits(33)])
        expected = _verdict_of_reference(bytes(data), offset, limit)
        try:
            got: tuple[int, int] | str = read_compact_size(bytes(data), offset, limit)
        except CompactSizeError as exc:
            assert isinstance(exc, PeerpoolError) and isinstance(exc, ValueError)
            assert exc.offset == offset
            assert isinstance(expected, str) and kinds[expected] in str(exc), (data, expected)
            continue
        assert got == expected, (bytes(data).hex(), offset, limit)
