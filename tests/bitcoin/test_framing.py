"""Message framing kernel: encoding, the push decoder, BSV's extended header,
and its errors, against the pure-Python reference decoder."""

from __future__ import annotations

import hashlib
import random
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.bitcoin import (
    LargeMessageEnd,
    LargeMessagePiece,
    LargeMessageStart,
    Message,
    MessageDecoder,
    encode_header,
    encode_message,
)
from peerpool.bitcoin.messages.framing import checksum
from peerpool.errors import (
    BadMagicError,
    BitcoinProtocolError,
    ChecksumError,
    MalformedCommandError,
    MalformedMessageError,
    PayloadTooLargeError,
)
from tests.reference import bitcoin as ref

MAGIC = bytes.fromhex("f9beb4d9")
KINDS = {
    "bad-magic": BadMagicError,
    "bad-checksum": ChecksumError,
    "too-large": PayloadTooLargeError,
    "bad-command": MalformedCommandError,
    "bad-extended": MalformedMessageError,
}
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))
commands = st.text(alphabet=PRINTABLE, min_size=1, max_size=12)


def as_tuples(events: list[Any]) -> list[tuple[Any, ...]]:
    """The kernel's events in the reference's tuple form, pieces merged."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, Message):
            out.append(("message", e.command, e.payload))
        elif isinstance(e, LargeMessageStart):
            out.append(("start", e.command, e.length))
        elif isinstance(e, LargeMessagePiece):
            out.append(("piece", e.data))
        elif isinstance(e, LargeMessageEnd):
            out.append(("end", e.command, e.length))
        else:
            raise AssertionError(f"unknown event {e!r}")
    return ref.merge_pieces(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in pairwise(points)]


def test_verack_header_is_the_well_known_one() -> None:
    # sha256d("") starts 5df6e0e2: every empty-payload message carries it
    assert encode_message(MAGIC, "verack", b"").hex() == (
        "f9beb4d976657261636b000000000000000000005df6e0e2"
    )


@given(commands, st.binary(max_size=3000))
def test_encoding_equals_the_reference(command: str, payload: bytes) -> None:
    framed = encode_message(MAGIC, command, payload)
    assert framed == ref.encode_message(MAGIC, command, payload)
    assert checksum(payload) == hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


@settings(max_examples=300)
@given(
    st.lists(st.tuples(commands, st.binary(max_size=2500)), min_size=1, max_size=5),
    st.lists(st.integers(0, 20000), max_size=12),
    st.sampled_from([0, 1, 100, 1000, 1 << 20]),
)
def test_any_stream_in_any_split_round_trips(
    messages: list[tuple[str, bytes]], cuts: list[int], threshold: int
) -> None:
    stream = b"".join(encode_message(MAGIC, c, p) for c, p in messages)
    decoder = MessageDecoder(MAGIC, max_payload=1 << 20, large_threshold=threshold)
    events: list[Any] = []
    for piece in split(stream, cuts):
        events += decoder.feed(piece)
    expected: list[tuple[Any, ...]] = []
    for command, payload in messages:
        if len(payload) >= threshold:
            expected += [("start", command, len(payload))]
            expected += [("piece", payload)] if payload else []
            expected += [("end", command, len(payload))]
        else:
            expected.append(("message", command, payload))
    assert as_tuples(events) == ref.merge_pieces(expected)
    assert decoder.consumed == len(stream)
    assert decoder.at_boundary


def test_one_byte_at_a_time() -> None:
    stream = encode_message(MAGIC, "ping", b"12345678") + encode_message(MAGIC, "block", bytes(500))
    decoder = MessageDecoder(MAGIC, large_threshold=100)
    events: list[Any] = []
    for i in range(len(stream)):
        events += decoder.feed(stream[i : i + 1])
        assert decoder.at_boundary == (i + 1 in (32, len(stream)))
    assert as_tuples(events) == [
        ("message", "ping", b"12345678"),
        ("start", "block", 500),
        ("piece", bytes(500)),
        ("end", "block", 500),
    ]


def test_every_truncation_waits_for_more() -> None:
    """A stream cut anywhere gives the complete messages before the cut and
    no error: the rest may still arrive."""
    messages = [("ping", b"12345678"), ("verack", b""), ("tx", bytes(range(200)))]
    framed = [encode_message(MAGIC, c, p) for c, p in messages]
    stream = b"".join(framed)
    ends = [sum(map(len, framed[: i + 1])) for i in range(len(framed))]
    for cut in range(len(stream) + 1):
        decoder = MessageDecoder(MAGIC)
        got = as_tuples(decoder.feed(stream[:cut]))
        done = [m for m, end in zip(messages, ends, strict=True) if end <= cut]
        assert got == [("message", c, p) for c, p in done]
        assert decoder.at_boundary == (cut in (0, *ends))
        assert decoder.consumed == cut


def test_large_payload_is_handed_on_as_it_arrives() -> None:
    payload = random.Random(1).randbytes(10_000)
    stream = encode_message(MAGIC, "block", payload)
    decoder = MessageDecoder(MAGIC, large_threshold=1000)
    first = decoder.feed(stream[: 24 + 10])
    assert as_tuples(first) == [("start", "block", 10_000), ("piece", payload[:10])]
    assert as_tuples(decoder.feed(stream[34:5000])) == [("piece", payload[10:4976])]
    assert as_tuples(decoder.feed(stream[5000:])) == [
        ("piece", payload[4976:]),
        ("end", "block", 10_000),
    ]


def test_extended_header_layout_and_decoding() -> None:
    length = (5 << 30) + 3
    head = encode_header(MAGIC, "block", length)
    assert head == ref.encode_header(MAGIC, "block", length)
    assert len(head) == 44 and head[4:16] == b"extmsg" + bytes(6)
    assert head[16:24] == bytes.fromhex("ffffffff00000000")
    assert int.from_bytes(head[36:44], "little") == length
    decoder = MessageDecoder(MAGIC, max_payload=1 << 40, large_threshold=1 << 20)
    assert as_tuples(decoder.feed(head + b"abc")) == [("start", "block", length), ("piece", b"abc")]
    # just under the marker, the ordinary 24-byte header still serves
    assert len(encode_header(MAGIC, "block", 0xFFFF_FFFE)) == 24


def test_an_extended_header_for_a_small_payload_is_refused() -> None:
    """The extended header is for payloads the 32-bit length cannot hold: an
    8-byte ping behind one is refused (by the reference decoder too)."""
    head = ref.encode_header(MAGIC, "ping", 0xFFFF_FFFF)[:36] + (8).to_bytes(8, "little")
    good = encode_message(MAGIC, "ping", bytes(8))
    decoder = MessageDecoder(MAGIC, large_threshold=1 << 20)
    with pytest.raises(MalformedMessageError, match="32-bit") as info:
        decoder.feed(good + head + bytes(8))
    assert info.value.offset == len(good)
    assert as_tuples(info.value.events) == [("message", "ping", bytes(8))]
    with pytest.raises(ref.Rejected, match="bad-extended"):
        ref.MessageDecoder(MAGIC, 1 << 40, 1 << 20).feed(head + bytes(8))
    # the smallest length that needs the extended header is accepted
    decoder = MessageDecoder(MAGIC, max_payload=1 << 40, large_threshold=1 << 20)
    head = encode_header(MAGIC, "block", 0xFFFF_FFFF)
    assert as_tuples(decoder.feed(head)) == [("start", "block", 0xFFFF_FFFF)]


def test_messages_before_an_error_come_with_it() -> None:
    """feed() raising keeps what it decoded: the error's ``events`` are the
    messages before the bad one, in order; a later feed raises again, with none."""
    ping1, ping2 = (encode_message(MAGIC, "ping", n.to_bytes(8, "little")) for n in (1, 2))
    bad = encode_header(MAGIC, "ping", 8, b"\0\0\0\0") + bytes(8)
    decoder = MessageDecoder(MAGIC)
    assert decoder.feed(ping1[:10]) == []
    with pytest.raises(ChecksumError) as info:
        decoder.feed(ping1[10:] + ping2 + bad + ping1)
    assert as_tuples(info.value.events) == [
        ("message", "ping", (1).to_bytes(8, "little")),
        ("message", "ping", (2).to_bytes(8, "little")),
    ]
    assert info.value.offset == 2 * len(ping1)
    with pytest.raises(ChecksumError) as again:
        decoder.feed(ping1)
    assert again.value.events == []


def _raises(stream: bytes, piece: int = 7, **limits: int) -> BitcoinProtocolError:
    decoder = MessageDecoder(MAGIC, **limits)
    with pytest.raises(BitcoinProtocolError) as info:
        for i in range(0, len(stream), piece):
            decoder.feed(stream[i : i + piece])
    # a failed decoder stays failed: the stream cannot be resynchronised
    with pytest.raises(type(info.value)):
        decoder.feed(encode_message(MAGIC, "ping", bytes(8)))
    return info.value


def test_errors_are_distinct_classes_with_the_message_offset() -> None:
    good = encode_message(MAGIC, "ping", bytes(8))
    wrong_magic = bytes.fromhex("0b110907") + good[4:]
    bad_sum = good[:-1] + b"\x01"
    bad_command = good[:9] + b"x" + good[10:]  # a letter after the NUL padding began
    too_large = encode_header(MAGIC, "block", 2 << 20)  # the header alone is enough
    bad_ext = ref.EXTMSG.join([MAGIC, bytes.fromhex("feffffff00000000")])
    cases = [
        (wrong_magic, BadMagicError),
        (bad_sum, ChecksumError),
        (bad_command, MalformedCommandError),
        (too_large, PayloadTooLargeError),
        (bad_ext, MalformedMessageError),
    ]
    for data, cls in cases:
        err = _raises(good + data, max_payload=1 << 20)
        assert type(err) is cls
        assert err.offset == len(good)
        assert isinstance(err, ValueError)
    assert len({cls for _, cls in cases}) == len(cases)
    assert not any(issubclass(a, b) for _, a in cases for _, b in cases if a is not b)


def test_wrong_magic_is_caught_from_its_four_bytes() -> None:
    decoder = MessageDecoder(MAGIC)
    with pytest.raises(BadMagicError):
        decoder.feed(bytes.fromhex("fabfb5da"))


@pytest.mark.parametrize(
    "field",
    [
        bytes(12),
        b"ver\x00ack\x00\x00\x00\x00\x00",
        b"ping\x07" + bytes(7),
        b"caf\xc3\xa9" + bytes(7),
    ],
)
def test_malformed_command_fields(field: bytes) -> None:
    header = MAGIC + field + bytes(4) + ref.checksum(b"")
    assert type(_raises(header)) is MalformedCommandError


@pytest.mark.parametrize("command", ["", "thirteen_char", "caf\u00e9", "a\x00b", "tab\t"])
def test_encoding_refuses_malformed_commands(command: str) -> None:
    with pytest.raises(MalformedCommandError):
        encode_message(MAGIC, command, b"")


def _mutate(rng: random.Random, stream: bytes) -> bytes:
    data = bytearray(stream)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        if op == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[rng.randint(0, len(data)) :]
        elif op == 2:
            at = rng.randint(0, len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 30))
        elif op == 3 and data:
            at = rng.randrange(len(data))  # a random length field
            data[at : at + 4] = rng.getrandbits(32).to_bytes(4, "little")
        else:
            data = bytearray(rng.randbytes(rng.randint(0, 200)))
    return bytes(data)


def test_mutated_streams_give_the_reference_verdict() -> None:
    """Bit flips, truncations, insertions, random length fields and random
    bytes: every feed gives the reference's events, or the error class and
    offset the reference gives; never another exception."""
    rng = random.Random(2)
    samples = [
        encode_message(MAGIC, "version", rng.randbytes(100))
        + encode_message(MAGIC, "verack", b"")
        + encode_message(MAGIC, "block", rng.randbytes(600)),
        ref.encode_header(MAGIC, "block", 0xFFFF_FFFF)[:36]
        + (40).to_bytes(8, "little")
        + bytes(40),
    ]
    for _ in range(4000):
        stream = _mutate(rng, rng.choice(samples))
        limits = {
            "max_payload": rng.choice([500, 1 << 20]),
            "large_threshold": rng.choice([0, 50, 1000]),
        }
        ours, theirs = MessageDecoder(MAGIC, **limits), ref.MessageDecoder(MAGIC, **limits)
        for piece in split(stream, [rng.randrange(400) for _ in range(rng.randint(0, 4))]):
            try:
                expected: Any = ref.merge_pieces(theirs.feed(piece))
            except ref.Rejected as exc:
                expected = exc
            try:
                got: Any = as_tuples(ours.feed(piece))
            except BitcoinProtocolError as exc:
                assert isinstance(expected, ref.Rejected), (stream.hex(), exc)
                assert type(exc) is KINDS[expected.kind] and exc.offset == expected.offset
                break
            assert got == expected, stream.hex()
        assert ours.consumed == theirs.consumed
