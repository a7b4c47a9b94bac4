"""One key or one pair of ids at a time: get_hashes, distance, id <-> bytes."""

from __future__ import annotations

import numpy as np
import pytest

from peerpool.chord import (
    RING_SIZE,
    distance,
    get_hashes,
    id_from_bytes,
    id_to_bytes,
    ring_id,
    ring_size,
)
from peerpool.errors import PeerpoolError, RingIdError
from tests.reference import chord as ref

# FIPS 180-2 example digests of "abc", written out rather than computed.
ABC_SHA1 = 0xA9993E364706816ABA3E25717850C26C9CD0D89D
ABC_SHA256 = 0xBA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD


def test_abc_hashes_are_the_published_digests_shifted_into_the_ring() -> None:
    sha1, _, sha256, _, _ = get_hashes(b"abc")
    assert sha1 == ABC_SHA1 << 224
    assert sha256 == ABC_SHA256 << 128


@pytest.mark.parametrize("key", [b"", b"abc", "abc", "", "ünïcødé ✓ 🚀", b"\x00\xff" * 500])
def test_get_hashes_equals_the_hashlib_reference(key: bytes | str) -> None:
    assert get_hashes(key) == ref.get_hashes(key)


def test_a_str_key_is_hashed_as_its_utf8_bytes() -> None:
    text = "clé 🔑"
    assert get_hashes(text) == get_hashes(text.encode("utf-8"))


def test_shifted_hashes_fit_the_ring_and_sha512_is_not_reduced() -> None:
    sha1, sha224, sha256, sha384, sha512 = get_hashes(b"")
    for value, shift in ((sha1, 224), (sha224, 160), (sha256, 128)):
        assert value < RING_SIZE
        assert value % (1 << shift) == 0
    assert sha384 < RING_SIZE
    # SHA-512("") starts with 0xcf, so it is well above 2**384.
    assert sha512 > RING_SIZE
    assert sha512 >> 504 == 0xCF


def test_a_long_key_hashed_without_the_gil_gives_the_same_answer() -> None:
    key = bytes(range(256)) * 64  # 16 KiB: over the kernel's GIL-release threshold
    assert get_hashes(key) == ref.get_hashes(key)


@pytest.mark.parametrize("key", [3, None, bytearray(b"abc"), ["abc"], 1.5])
def test_a_key_that_is_not_bytes_or_str_is_a_ring_id_error(key: object) -> None:
    with pytest.raises(RingIdError, match="must be bytes or str"):
        get_hashes(key)  # type: ignore[arg-type]


def test_a_str_with_a_lone_surrogate_is_a_ring_id_error() -> None:
    with pytest.raises(RingIdError, match="UTF-8") as info:
        get_hashes("a\ud800b")
    # Callers catching either branch of the tree catch it.
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PeerpoolError)


def test_distance_is_clockwise_and_wraps() -> None:
    assert distance(3, 7) == 4
    assert distance(7, 3) == RING_SIZE - 4
    assert distance(5, 5) == 0
    assert distance(RING_SIZE - 1, 0) == 1
    assert distance(7, 3, limit=10) == 6
    assert distance(0, 9, limit=10) == 9
    assert distance(0, 0, limit=1) == 0


def test_distance_accepts_integer_likes_and_any_positive_limit() -> None:
    assert distance(np.uint64(3), np.int32(7)) == 4
    big = 2**512  # not a ring size we use, but a valid modulus
    assert distance(1, big - 1, limit=big) == big - 2


def test_distance_takes_any_ints_as_py2p_does() -> None:
    # py2p computes (b - a) % (limit or 2**384) on whatever ints it is given:
    # a key's fifth hash (SHA-512) is above the ring, and ids need no range.
    sha512 = get_hashes(b"abc")[4]
    assert sha512 > RING_SIZE
    assert distance(0, sha512) == sha512 % RING_SIZE
    assert distance(sha512, 0) == (-sha512) % RING_SIZE
    assert distance(-1, 0) == 1
    assert distance(0, RING_SIZE) == 0
    assert distance(10, 3, 10) == 3
    assert distance(3, 7, 0) == 4  # 0 means the full ring, like None
    assert distance(7, 3, None) == RING_SIZE - 4


@pytest.mark.parametrize(
    ("a", "b", "limit", "message"),
    [
        (0, 0, -5, "positive"),
        (1.0, 2, RING_SIZE, "must be an integer"),
        ("1", 2, RING_SIZE, "must be an integer"),
        (True, 2, RING_SIZE, "not bool"),
        (1, 2, 10.0, "must be an integer"),
    ],
)
def test_distance_rejects_non_integers_and_negative_limits(
    a: object, b: object, limit: object, message: str
) -> None:
    with pytest.raises(RingIdError, match=message):
        distance(a, b, limit)  # type: ignore[arg-type]


def test_ring_id_and_ring_size_validate() -> None:
    assert ring_id(RING_SIZE - 1) == RING_SIZE - 1
    with pytest.raises(RingIdError, match=r"2\*\*384"):
        ring_id(RING_SIZE)
    assert ring_size(RING_SIZE, maximum=RING_SIZE) == RING_SIZE
    with pytest.raises(RingIdError, match="above"):
        ring_size(RING_SIZE + 1, maximum=RING_SIZE)


def test_ids_round_trip_through_big_endian_bytes() -> None:
    for value in (0, 1, 2**64, RING_SIZE - 1):
        raw = id_to_bytes(value)
        assert len(raw) == 48
        assert raw == value.to_bytes(48, "big")
        assert id_from_bytes(raw) == value
    sha512 = get_hashes(b"x")[4]
    assert id_from_bytes(id_to_bytes(sha512, width=64)) == sha512


def test_id_bytes_of_the_wrong_size_or_range_are_rejected() -> None:
    with pytest.raises(RingIdError, match="48 or 64 bytes"):
        id_from_bytes(b"\x00" * 47)
    with pytest.raises(RingIdError, match="outside the ring"):
        id_to_bytes(RING_SIZE)
    with pytest.raises(RingIdError, match="outside the ring"):
        id_to_bytes(-1)


def test_the_batch_owner_guesser_agrees_with_owner_guess() -> None:
    import random

    from peerpool.chord.ring import RING_SIZE
    from peerpool.chord.sim import Simulator

    sim = Simulator(seed=5)
    for n, successors in ((3, 8), (40, 8)):
        sim = Simulator(seed=n, successors=successors)
        cores = sim.build(n)
        rng = random.Random(n)
        for core in cores[:5]:
            guess = core.routing.owner_guesser()
            for _ in range(300):
                point = rng.randrange(RING_SIZE)
                assert guess(point) == core.routing.owner_guess(point)
