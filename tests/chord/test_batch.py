"""Many keys or ids at once: the numpy forms, checked against the pure-Python oracle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from peerpool.chord import (
    RING_SIZE,
    HashColumns,
    array_to_ids,
    as_id_array,
    closest_before,
    distance_batch,
    get_hashes_batch,
    ids_to_array,
)
from peerpool.errors import RingIdError
from tests.reference import chord as ref

KEYS: list[bytes | str] = [b"", "", b"abc", "abc", "ünïcødé ✓", b"\x00" * 1000, "peer-42"]


def _as_ints(columns: HashColumns) -> list[tuple[int, ...]]:
    return list(zip(*(ref.rows_to_ints(column) for column in columns), strict=True))


def test_hash_batch_rows_equal_the_reference_per_key() -> None:
    columns = get_hashes_batch(KEYS)
    assert [c.shape for c in columns] == [(7, 48)] * 4 + [(7, 64)]
    assert all(c.dtype == np.uint8 and c.flags.c_contiguous for c in columns)
    assert _as_ints(columns) == [ref.get_hashes(k) for k in KEYS]


def test_hash_batch_takes_any_iterable_and_an_empty_one() -> None:
    from_generator = get_hashes_batch(k for k in KEYS)
    assert _as_ints(from_generator) == _as_ints(get_hashes_batch(KEYS))
    empty = get_hashes_batch([])
    assert [c.shape for c in empty] == [(0, 48)] * 4 + [(0, 64)]


def test_hash_batch_names_the_bad_key() -> None:
    with pytest.raises(RingIdError, match=r"keys\[2\] must be bytes or str, not int"):
        get_hashes_batch([b"a", "b", 3])  # type: ignore[list-item]
    with pytest.raises(RingIdError, match=r"keys\[1\] is a str with no UTF-8"):
        get_hashes_batch(["ok", "\udfff"])


@pytest.mark.parametrize("keys", [b"abc", "abc"])
def test_a_single_key_given_as_the_batch_is_refused(keys: bytes | str) -> None:
    # Iterating it would hash each byte or character as its own key.
    with pytest.raises(RingIdError, match="not a single bytes or str"):
        get_hashes_batch(keys)  # type: ignore[arg-type]


def test_a_non_iterable_batch_is_a_type_error_from_python() -> None:
    with pytest.raises(TypeError):
        get_hashes_batch(5)  # type: ignore[arg-type]


def test_pairwise_distances_equal_the_reference() -> None:
    a = [0, 1, 7, RING_SIZE - 1, 2**200, 2**64]
    b = [0, 0, 3, 0, 2**199, 2**64 - 1]
    got = array_to_ids(distance_batch(ids_to_array(a), ids_to_array(b)))
    assert got == [ref.distance(x, y) for x, y in zip(a, b, strict=True)]
    # Iterables of ints are converted on the way in.
    assert array_to_ids(distance_batch(a, b)) == got


def test_borrows_that_cross_many_limbs_in_batches_of_every_length() -> None:
    # The vector kernel takes four ids at a time and hands a group whose
    # borrow crosses a zero limb back to the scalar code; lengths around the
    # group size and ids one apart exercise both and the tail.
    rng = np.random.default_rng(5)
    for n in (1, 3, 4, 5, 8, 9, 257):
        a = [int(x) for x in rng.integers(0, 2**63, size=n)]
        b = [x - 1 if i % 2 else x << 300 for i, x in enumerate(a)]
        a[0] = 1  # 0 - 1: every limb borrows
        b[0] = 0
        got = array_to_ids(distance_batch(ids_to_array(a), ids_to_array(b)))
        assert got == [ref.distance(x, y) for x, y in zip(a, b, strict=True)]
        one = array_to_ids(distance_batch(a[0], ids_to_array(b)))
        assert one == [ref.distance(a[0], y) for y in b]


def test_one_id_on_either_side_is_used_against_every_row() -> None:
    many = [1, 5, 100, RING_SIZE - 1]
    assert array_to_ids(distance_batch(5, many)) == [ref.distance(5, t) for t in many]
    assert array_to_ids(distance_batch(many, 5)) == [ref.distance(o, 5) for o in many]
    one_row = ids_to_array([5])[0]  # shape (48,)
    assert array_to_ids(distance_batch(one_row, many)) == [ref.distance(5, t) for t in many]


def test_distances_on_a_smaller_ring() -> None:
    origins, targets = [7, 3, 9, 0], [3, 7, 9, 9]
    got = array_to_ids(distance_batch(origins, targets, limit=10))
    assert got == [6, 4, 0, 9]
    odd = RING_SIZE - 159  # a limit with every byte in use
    got = array_to_ids(distance_batch([odd - 1, 0], [0, odd - 1], limit=odd))
    assert got == [1, odd - 1]


def test_non_contiguous_arrays_are_read_correctly() -> None:
    ids = ids_to_array(range(0, 40, 2))
    every_other = ids[::2]
    assert not every_other.flags.c_contiguous
    got = array_to_ids(distance_batch(every_other, 1))
    assert got == [ref.distance(i, 1) for i in range(0, 40, 4)]
    read_only = ids_to_array([9, 8])
    read_only.setflags(write=False)
    assert array_to_ids(distance_batch(read_only, np.asfortranarray(ids_to_array([1, 1])))) == [
        ref.distance(9, 1),
        ref.distance(8, 1),
    ]


@pytest.mark.parametrize(
    ("origins", "targets", "limit", "message"),
    [
        ([1, 2], [1, 2, 3], RING_SIZE, "2 origins and 3 targets"),
        (5, [1, 7, 10], 10, r"targets\[2\] is not below"),
        ([10], [1], 10, r"origins\[0\] is not below"),
        ([1], [1], 0, "positive"),
        ([1], [1], RING_SIZE + 1, "above"),
        ([RING_SIZE], [1], RING_SIZE, "outside the ring"),
        ([-1], [1], RING_SIZE, "outside the ring"),
        (np.zeros((2, 48), dtype=np.int64), [1], RING_SIZE, "uint8"),
        (np.zeros((2, 47), dtype=np.uint8), [1], RING_SIZE, r"shape \(n, 48\)"),
        (np.zeros(96, dtype=np.uint8), [1], RING_SIZE, r"shape \(n, 48\)"),
        (b"\x00" * 48, [1], RING_SIZE, "not bytes"),
        ([1.5], [1], RING_SIZE, "must be an integer"),
    ],
)
def test_bad_distance_batches_are_ring_id_errors(
    origins: object, targets: object, limit: int, message: str
) -> None:
    with pytest.raises(RingIdError, match=message):
        distance_batch(origins, targets, limit)  # type: ignore[arg-type]


def test_an_id_outside_the_ring_reports_its_byte_offset() -> None:
    with pytest.raises(RingIdError) as info:
        distance_batch([1, 2, 3, 4], [1, 2, 99, 4], limit=50)
    assert info.value.offset == 2 * 48


def test_closest_before_is_the_last_id_at_or_before_the_key() -> None:
    ids = [30, 10, 20]
    assert closest_before(ids, 25) == 2
    assert closest_before(ids, 20) == 2  # an id equal to the key wins
    assert closest_before(ids, 19) == 1
    assert closest_before(ids, 5) == 0  # nothing at or before 5: wrap to the largest
    assert closest_before(ids_to_array(ids), RING_SIZE - 1) == 0


def test_closest_before_breaks_ties_by_the_smallest_index() -> None:
    assert closest_before([40, 20, 20, 20], 25) == 1
    assert closest_before([RING_SIZE - 1, RING_SIZE - 1], RING_SIZE - 2) == 0


def test_closest_before_rejects_no_ids_and_keys_outside_the_ring() -> None:
    with pytest.raises(RingIdError, match="at least one id"):
        closest_before([], 3)
    with pytest.raises(RingIdError, match="outside the ring"):
        closest_before([1], RING_SIZE)


def test_ids_round_trip_through_arrays() -> None:
    ids = [0, 1, 2**383, RING_SIZE - 1]
    array = ids_to_array(ids)
    assert array.shape == (4, 48)
    assert array.flags.writeable
    assert array_to_ids(array) == ids
    np.testing.assert_array_equal(array, ref.ints_to_rows(ids))
    wide = [2**511, 5]
    assert array_to_ids(ids_to_array(wide, width=64)) == wide
    assert ids_to_array([]).shape == (0, 48)


def test_array_to_ids_rejects_what_is_not_a_2d_uint8_array() -> None:
    for bad in (np.zeros(48, dtype=np.uint8), np.zeros((1, 48), dtype=np.int8), [[0] * 48]):
        with pytest.raises(RingIdError, match="2-D uint8"):
            array_to_ids(bad)  # type: ignore[arg-type]


def test_as_id_array_keeps_a_good_array_without_copying() -> None:
    array = ids_to_array([1, 2, 3])
    assert as_id_array(array) is array


def test_batches_from_several_threads_agree_with_one_thread() -> None:
    # The kernels run with the GIL released; concurrent calls must not mix results.
    keys = [f"key-{i}" for i in range(2000)]
    ids = ids_to_array(range(1, 20001, 7))
    expected_hashes = get_hashes_batch(keys).sha512.tobytes()
    expected_dist = distance_batch(ids, 3).tobytes()
    with ThreadPoolExecutor(max_workers=4) as pool:
        hashes = list(pool.map(lambda _: get_hashes_batch(keys).sha512.tobytes(), range(8)))
        dists = list(pool.map(lambda _: distance_batch(ids, 3).tobytes(), range(8)))
    assert hashes == [expected_hashes] * 8
    assert dists == [expected_dist] * 8
