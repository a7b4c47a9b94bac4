"""get_hashes and distance against py2p 0.7.878 itself (PyPI), computed in the test.

py2p is the system whose ring this one must match key for key: a value set by
either must land on the same five positions. Its functions are imported and
run here beside ours on generated inputs; no vector is written out by hand.
"""

from __future__ import annotations

import py2p.chord as py2p_chord  # the test extra installs it: a missing py2p fails, never skips
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.chord import RING_SIZE, distance, get_hashes

keys = st.one_of(st.binary(max_size=300), st.text(max_size=100))
# Ids as py2p meets them: ring ids, SHA-512 values (up to 2**512), and the
# negatives its next/prev arithmetic (id - 1 at id 0) can produce.
ints = st.one_of(
    st.integers(min_value=0, max_value=RING_SIZE - 1),
    st.integers(min_value=0, max_value=2**512 - 1),
    st.integers(min_value=-(2**400), max_value=2**400),
)
limits = st.one_of(st.none(), st.just(0), st.integers(min_value=1, max_value=2**520))


def _py2p_hashes(key: bytes | str) -> tuple[int, ...]:
    # py2p's setters pass every key through sanitize_packet, which encodes a
    # str as UTF-8 before get_hashes sees it.
    data = key.encode("utf-8") if isinstance(key, str) else key
    return tuple(py2p_chord.get_hashes(data))


@given(keys)
def test_get_hashes_equals_py2p(key: bytes | str) -> None:
    assert get_hashes(key) == _py2p_hashes(key)


@pytest.mark.parametrize("key", [b"", b"abc", "abc", "ünïcødé ✓", b"\xff" * 1000, b"a" * 100_000])
def test_get_hashes_equals_py2p_on_edge_keys(key: bytes | str) -> None:
    ours = get_hashes(key)
    assert ours == _py2p_hashes(key)
    assert ours[4] >= 0  # the fifth stays unreduced in both


@given(ints, ints, limits)
def test_distance_equals_py2p(a: int, b: int, limit: int | None) -> None:
    assert distance(a, b, limit) == py2p_chord.distance(a, b, limit)


@given(keys, ints)
def test_distance_from_any_id_to_each_of_a_keys_positions_equals_py2p(
    key: bytes | str, node: int
) -> None:
    for position in get_hashes(key):
        assert distance(node, position) == py2p_chord.distance(node, position)
        assert distance(position, node) == py2p_chord.distance(position, node)
