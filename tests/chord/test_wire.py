"""The ring protocol's wire format (wire.py): round trips, and strict, bounded decoding of garbage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.chord import messages as m
from peerpool.chord import wire
from peerpool.chord.core import ChordCore
from peerpool.chord.storage import Entry
from peerpool.chord.types import MAX_ADDRS, MAX_ID_CHOICES, NodeRef, node_id
from peerpool.errors import ChordConfigError, ChordMessageError, InputError

positions = st.integers(min_value=0, max_value=2**512 - 1)
texts = st.text(max_size=20).filter(lambda t: len(t.encode()) <= 255)
peer_ids = texts.filter(bool)
nodes = st.builds(
    NodeRef,
    peer_ids,
    st.lists(texts, max_size=MAX_ADDRS).map(tuple),
    choice=st.integers(0, MAX_ID_CHOICES - 1),
)
values = st.one_of(st.binary(max_size=64), st.text(max_size=32))
entries = st.builds(
    Entry,
    st.integers(0, 4),
    positions,
    values,
    st.one_of(st.none(), values),
    st.integers(0, 2**64 - 1),
)
skips = st.lists(peer_ids, max_size=m.MAX_SKIP).map(tuple)
node_lists = st.lists(nodes, max_size=5).map(tuple)
messages = st.one_of(
    st.just(m.Ping()),
    st.builds(m.Get, st.integers(0, 4), positions, skips),
    st.builds(m.Find, positions, skips),
    st.builds(m.Put, st.lists(entries, max_size=4).map(tuple), st.booleans(), skips),
    st.just(m.GetState()),
    st.builds(m.Notify, nodes),
    st.builds(
        m.Transfer,
        positions,
        positions,
        st.one_of(st.none(), st.tuples(st.integers(0, 4), positions)),
        st.integers(0, 2**32 - 1),
    ),
    st.builds(
        m.Sync,
        st.lists(
            st.tuples(st.integers(0, 4), positions, st.integers(0, 2**64 - 1)), max_size=4
        ).map(tuple),
    ),
    st.builds(m.Leaving, nodes, st.one_of(st.none(), nodes), node_lists),
    st.builds(
        m.Broadcast,
        st.binary(min_size=16, max_size=16),
        st.integers(0, 2**64 - 1),
        st.integers(0, 255),
        positions,
        nodes,
    ),
    st.just(m.Ok()),
    st.builds(m.Next, node_lists, st.booleans()),
    st.builds(m.Found, entries),
    st.just(m.Missing()),
    st.builds(m.State, nodes, st.one_of(st.none(), nodes), node_lists),
    st.builds(m.Entries, st.lists(entries, max_size=4).map(tuple), st.booleans()),
    st.builds(m.Want, st.lists(st.integers(0, 2**32 - 1), max_size=8).map(tuple)),
    st.builds(m.Error, texts),
)


@given(messages)
def test_every_message_round_trips(msg: m.Message) -> None:
    assert wire.decode(wire.encode(msg)) == msg


@given(messages, st.data())
def test_every_truncation_is_a_message_error(msg: m.Message, data: st.DataObject) -> None:
    raw = wire.encode(msg)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(ChordMessageError):
        wire.decode(raw[:cut])


@given(messages, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(msg: m.Message, extra: bytes) -> None:
    with pytest.raises(ChordMessageError, match="after the message"):
        wire.decode(wire.encode(msg) + extra)


@given(st.binary(max_size=400))
def test_garbage_decodes_or_raises_a_message_error_and_nothing_else(data: bytes) -> None:
    try:
        msg = wire.decode(data)
    except ChordMessageError as exc:
        assert isinstance(exc, InputError)
    else:
        assert wire.encode(msg) == data  # what decodes is exactly one message


def test_unknown_version_and_kind_are_refused() -> None:
    for other in (m.VERSION - 1, m.VERSION + 1):  # the last format and a future one
        with pytest.raises(ChordMessageError, match="version"):
            wire.decode(bytes([other, 1]))
    with pytest.raises(ChordMessageError, match="kind"):
        wire.decode(bytes([m.VERSION, 200]))


def test_a_huge_count_is_refused_before_anything_is_built() -> None:
    # A Put claiming 4 billion entries in 10 bytes: refused on the count alone.
    raw = bytes([m.VERSION, 3, 0]) + struct.pack(">I", 2**32 - 1)
    with pytest.raises(ChordMessageError, match="count"):
        wire.decode(raw)
    raw = bytes([m.VERSION, 3, 0]) + struct.pack(">I", m.MAX_ENTRIES + 1) + bytes(79 * 5000)
    with pytest.raises(ChordMessageError, match="count"):
        wire.decode(raw)


def test_an_oversized_value_length_is_refused_before_slicing() -> None:
    entry = wire.encode(m.Found(Entry(0, 1, b"k", b"v", 1)))
    # Rewrite the value's length field to just over the limit.
    head = entry[: 2 + 1 + 64 + 1 + 4 + 1 + 1]
    bad = head + struct.pack(">I", m.MAX_VALUE_BYTES + 1) + b"v" + bytes(8)
    with pytest.raises(ChordMessageError, match="over the limit"):
        wire.decode(bad)


def test_a_message_over_the_frame_limit_is_refused_without_parsing() -> None:
    with pytest.raises(ChordMessageError, match="over"):
        wire.decode(bytes(m.MAX_MESSAGE_BYTES + 1))


def test_bad_utf8_bad_flags_and_bad_methods_are_refused() -> None:
    with pytest.raises(ChordMessageError, match="UTF-8"):
        wire.decode(bytes([m.VERSION, 71, 2, 0xFF, 0xFE]))
    with pytest.raises(ChordMessageError, match="flag"):
        wire.decode(bytes([m.VERSION, 65, 7, 0]))
    with pytest.raises(ChordMessageError, match="method"):
        wire.decode(bytes([m.VERSION, 2, 9]) + bytes(65))


def test_a_node_reference_keeps_its_id_choice_and_a_choice_past_the_bound_is_refused() -> None:
    ref = NodeRef("peer-a", ("/ip4/127.0.0.1/tcp/1",), choice=5)
    back = wire.decode(wire.encode(m.Notify(ref)))
    assert isinstance(back, m.Notify)
    assert back.node == ref
    assert back.node.id == node_id("peer-a", 5) != node_id("peer-a")
    raw = bytearray(wire.encode(m.Notify(ref)))
    raw[raw.index(b"peer-a") + len(b"peer-a")] = MAX_ID_CHOICES  # the choice byte
    with pytest.raises(ChordMessageError, match="choice"):
        wire.decode(bytes(raw))


def test_options_out_of_range_are_typed_errors() -> None:
    for options in ({"replicas": 0}, {"replicas": 9, "successors": 8}, {"id_choices": 0},
                    {"id_choices": MAX_ID_CHOICES + 1}):  # fmt: skip
        with pytest.raises(ChordConfigError):
            ChordCore(NodeRef("p"), **options)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="choice"):
        NodeRef("p", choice=MAX_ID_CHOICES)
    assert ChordCore(NodeRef("p"), id_choices=MAX_ID_CHOICES).id_choices == MAX_ID_CHOICES
