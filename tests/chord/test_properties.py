"""Property tests: the kernel equals the pure-Python oracle on random keys and ids."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from peerpool.chord import (
    RING_SIZE,
    array_to_ids,
    closest_before,
    distance,
    distance_batch,
    get_hashes,
    get_hashes_batch,
    ids_to_array,
)
from tests.reference import chord as ref

# st.text() leaves out lone surrogates, so every str here has a UTF-8 encoding.
keys = st.one_of(st.binary(max_size=300), st.text(max_size=100))

# Uniform draws rarely land on the edges where carries and borrows cross limbs.
EDGES = [0, 1, 2**64 - 1, 2**64, 2**320, RING_SIZE // 2, RING_SIZE - 2**64, RING_SIZE - 1]
ring_ids = st.one_of(st.integers(0, RING_SIZE - 1), st.sampled_from(EDGES))


@st.composite
def ring_and_ids(draw: st.DrawFn, count: int) -> tuple[int, list[int]]:
    """A ring size (often the full ring) and `count` ids on it."""
    limit = draw(st.one_of(st.just(RING_SIZE), st.integers(1, RING_SIZE)))
    return limit, [draw(ring_ids) % limit for _ in range(count)]


@given(keys)
def test_get_hashes_equals_the_reference(key: bytes | str) -> None:
    assert get_hashes(key) == ref.get_hashes(key)


@given(st.lists(keys, max_size=20))
def test_hash_batch_rows_equal_the_reference(batch: list[bytes | str]) -> None:
    columns = get_hashes_batch(batch)
    rows = list(zip(*(ref.rows_to_ints(column) for column in columns), strict=True))
    assert rows == [ref.get_hashes(key) for key in batch]


@given(ring_and_ids(2))
def test_distance_equals_the_reference_and_is_antisymmetric(case: tuple[int, list[int]]) -> None:
    limit, (a, b) = case
    assert distance(a, b, limit) == ref.distance(a, b, limit)
    assert (distance(a, b, limit) + distance(b, a, limit)) % limit == 0


@given(st.data(), st.integers(0, 30))
def test_distance_batch_equals_the_reference(data: st.DataObject, n: int) -> None:
    limit, ids = data.draw(ring_and_ids(2 * n + 1))
    origins, targets, single = ids[:n], ids[n : 2 * n], ids[-1]
    pairwise = array_to_ids(distance_batch(ids_to_array(origins), ids_to_array(targets), limit))
    assert pairwise == [ref.distance(a, b, limit) for a, b in zip(origins, targets, strict=True)]
    from_one = array_to_ids(distance_batch(single, ids_to_array(targets), limit))
    assert from_one == [ref.distance(single, b, limit) for b in targets]
    to_one = array_to_ids(distance_batch(ids_to_array(origins), single, limit))
    assert to_one == [ref.distance(a, single, limit) for a in origins]


# Few distinct values so that repeats (ties) and keys equal to an id are common.
small_pool = st.lists(ring_ids, min_size=1, max_size=6, unique=True)


@given(st.data(), small_pool)
def test_closest_before_equals_the_reference(data: st.DataObject, pool: list[int]) -> None:
    ids = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=40))
    key = data.draw(st.one_of(st.sampled_from(pool), ring_ids))
    assert closest_before(ids_to_array(ids), key) == ref.closest_before(ids, key)


@given(st.lists(ring_ids, max_size=30))
def test_ids_round_trip_through_arrays(ids: list[int]) -> None:
    array = ids_to_array(ids)
    assert array_to_ids(array) == ids == ref.rows_to_ints(array)
