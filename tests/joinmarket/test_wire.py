"""Framing: round trips, splitting at any chunk boundary, limits before parsing, garbage."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerpool.errors import LineTooLongError, MalformedLineError
from peerpool.joinmarket.wire import LineBuffer, MessageType, decode_frame, encode_frame

types = st.integers(min_value=-(2**63), max_value=2**63)
texts = st.text(max_size=200)


@given(types, texts)
def test_encode_decode_round_trip(msg_type: int, line: str) -> None:
    raw = encode_frame(msg_type, line)
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw[:-1]  # json escapes newlines inside the line
    frame = decode_frame(raw[:-2])
    assert frame == (msg_type, line)


@given(st.lists(st.tuples(types, texts), max_size=20), st.data())
def test_line_buffer_splits_at_any_boundary(messages, data) -> None:
    stream = b"".join(encode_frame(t, s) for t, s in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    buf = LineBuffer()
    got = []
    last = 0
    for cut in [*cuts, len(stream)]:
        got.extend(buf.feed(stream[last:cut]))
        last = cut
    assert [decode_frame(line) for line in got] == messages
    assert buf.pending == 0


def test_plain_newline_and_blank_lines_accepted() -> None:
    buf = LineBuffer()
    lines = buf.feed(b'{"type": 798, "line": ""}\n\r\n\n{"type": 799, "line": "x"}\r\n')
    assert [decode_frame(x) for x in lines] == [(798, ""), (799, "x")]


def test_truncated_line_is_held_not_parsed() -> None:
    buf = LineBuffer()
    raw = encode_frame(MessageType.PUBMSG, "J5x!PUBLIC!orderbook")
    assert buf.feed(raw[:-3]) == []
    assert buf.pending == len(raw) - 3
    assert buf.feed(raw[-3:]) == [raw[:-2]]


def test_over_long_line_rejected_before_its_newline_arrives() -> None:
    buf = LineBuffer(max_line=100)
    buf.feed(b"x" * 60)
    with pytest.raises(LineTooLongError):
        buf.feed(b"y" * 41)  # 101 bytes and still no newline: never parsed


def test_over_long_complete_line_rejected() -> None:
    buf = LineBuffer(max_line=100)
    with pytest.raises(LineTooLongError):
        buf.feed(b"z" * 150 + b"\r\n")


def test_line_at_the_limit_passes() -> None:
    buf = LineBuffer(max_line=100)
    assert buf.feed(b"a" * 100 + b"\r\n") == [b"a" * 100]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        b'{"type": "685", "line": "x"}',
        b'{"type": true, "line": "x"}',
        b'{"type": 685.0, "line": "x"}',
        b'{"type": 685}',
        b'{"line": "x"}',
        b'{"type": 685, "line": 5}',
        b'{"type": 685, "line": null}',
        b"\xff\xfe\x00",
        b'{"type": 685, "line": "x"',
    ],
)
def test_garbage_is_a_typed_error(raw: bytes) -> None:
    with pytest.raises(MalformedLineError) as info:
        decode_frame(raw)
    assert isinstance(info.value, ValueError)


@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_untyped_errors(raw: bytes) -> None:
    buf = LineBuffer(max_line=128)
    try:
        lines = buf.feed(raw)
    except LineTooLongError:
        return
    for line in lines:
        try:
            frame = decode_frame(line)
        except MalformedLineError:
            continue
        assert isinstance(frame.type, int) and isinstance(frame.line, str)


def test_reference_style_json_decodes() -> None:
    # the reference encodes with json.dumps defaults; extra keys are ignored
    raw = json.dumps({"type": 687, "line": "J5a!PUBLIC!orderbook", "extra": 1}).encode()
    assert decode_frame(raw) == (687, "J5a!PUBLIC!orderbook")
