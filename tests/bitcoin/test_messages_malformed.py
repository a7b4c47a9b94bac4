"""Bad payloads: truncation, garbage, protocol maxima and hostile counts.

The one property behind most of these: decoding any bytes either raises
MalformedMessageError (and nothing else), or succeeds with a message whose
encoding is exactly those bytes (the encoding is canonical).
"""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.bitcoin.messages import (
    MAX_INV_ENTRIES,
    MESSAGE_TYPES,
    Addr,
    AddrV2,
    AddrV2Entry,
    FeeFilter,
    GetHeaders,
    Headers,
    Inv,
    InvVector,
    Message,
    NetworkAddress,
    Ping,
    Protoconf,
    Reject,
    SendCmpct,
    TimedAddress,
    Tx,
    VerAck,
    Version,
    decode_message,
    max_inv_entries_for_payload,
)
from peerpool.errors import CompactSizeError, InputError, MalformedMessageError
from tests.bitcoin.test_messages import MESSAGES, NODE_PROTOCONF, NODE_VERSION

CODECS = sorted(MESSAGE_TYPES.items())


def decodes_canonically_or_raises(codec: type[Message], payload: bytes) -> None:
    try:
        message = codec.decode(payload)
    except MalformedMessageError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(payload)
        assert codec.COMMAND in str(exc)
        return
    assert message.encode() == payload


@settings(deadline=None)
@given(MESSAGES, st.data())
def test_every_truncation_raises_or_is_a_shorter_valid_message(
    message: Message, data: st.DataObject
) -> None:
    payload = message.encode()
    if not payload:
        return
    cut = data.draw(st.integers(0, len(payload) - 1))
    decodes_canonically_or_raises(type(message), payload[:cut])


@settings(deadline=None)
@given(MESSAGES, st.data())
def test_a_corrupted_byte_raises_or_decodes_canonically(
    message: Message, data: st.DataObject
) -> None:
    payload = bytearray(message.encode())
    if not payload:
        payload = bytearray(b"\x00")
    index = data.draw(st.integers(0, len(payload) - 1))
    payload[index] ^= data.draw(st.integers(1, 255))
    decodes_canonically_or_raises(type(message), bytes(payload))


@pytest.mark.parametrize(("command", "codec"), CODECS)
@settings(deadline=None)
@given(garbage=st.binary(max_size=300))
def test_garbage_raises_only_malformed_message(
    command: str, codec: type[Message], garbage: bytes
) -> None:
    decodes_canonically_or_raises(codec, garbage)


@pytest.mark.parametrize(
    "command", ["verack", "sendheaders", "mempool", "getaddr", "sendaddrv2", "wtxidrelay"]
)
def test_empty_messages_refuse_a_payload(command: str) -> None:
    with pytest.raises(MalformedMessageError, match="unexpected bytes"):
        decode_message(command, b"\x00")


def test_non_minimal_compact_size_is_malformed_with_its_cause() -> None:
    with pytest.raises(MalformedMessageError) as caught:
        Inv.decode(b"\xfd\x01\x00" + bytes(36))
    assert isinstance(caught.value.__cause__, CompactSizeError)
    assert not isinstance(caught.value, CompactSizeError)


# --- protocol maxima: counts are checked before anything is allocated --------------


def test_inv_count_above_the_maximum() -> None:
    payload = b"\xfd" + struct.pack("<H", MAX_INV_ENTRIES + 1)
    with pytest.raises(MalformedMessageError, match="exceed the maximum of 50000"):
        Inv.decode(payload + bytes(36) * 2)


def test_inv_at_the_maximum_is_accepted() -> None:
    items = tuple(InvVector(1, i.to_bytes(32, "little")) for i in range(MAX_INV_ENTRIES))
    assert len(Inv.decode(Inv(items).encode()).items) == MAX_INV_ENTRIES


def test_protoconf_inventory_limit_matches_the_specification() -> None:
    # protoconf.md: a 2 MiB maximum payload allows 58,254 inventory entries
    assert max_inv_entries_for_payload(2 * 1024 * 1024) == 58_254
    items = tuple(InvVector(2, bytes(32)) for _ in range(MAX_INV_ENTRIES + 1))
    payload = Inv(items).encode()
    with pytest.raises(MalformedMessageError):
        decode_message("getdata", payload)
    assert len(decode_message("getdata", payload, max_inv_entries=58_254).items) == len(items)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "payload"),
    [
        ("inv", b"\xfd" + struct.pack("<H", 50_000)),  # a count with no entries behind it
        ("headers", b"\xfd" + struct.pack("<H", 2_000)),
        ("addr", b"\xfd" + struct.pack("<H", 1_000)),
        ("addrv2", b"\xfd" + struct.pack("<H", 1_000)),
        ("getheaders", b"\x00" * 4 + b"\x65"),
    ],
)
def test_a_lying_count_fails_without_allocating(command: str, payload: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessageError, match="need at least"):
            decode_message(command, payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


def test_headers_maxima_and_transaction_count() -> None:
    header = bytes(80)
    with pytest.raises(MalformedMessageError, match="exceed the maximum of 2000"):
        Headers.decode(b"\xfd" + struct.pack("<H", 2_001) + (header + b"\x00") * 2_001)
    with pytest.raises(MalformedMessageError, match="transaction count must be 0") as caught:
        Headers.decode(b"\x01" + header + b"\x01")
    assert caught.value.offset == 81
    assert (
        Headers.decode(b"\xfd" + struct.pack("<H", 2_000) + (header + b"\x00") * 2_000).count
        == 2_000
    )


def test_addr_maxima() -> None:
    entry = TimedAddress(1, 1, bytes(16), 8333)
    assert len(Addr.decode(Addr((entry,) * 1_000).encode()).addresses) == 1_000
    with pytest.raises(MalformedMessageError, match="maximum of 1000"):
        Addr.decode(Addr((entry,) * 1_001).encode())


def test_addrv2_address_sizes() -> None:
    def payload(network_id: int, address: bytes) -> bytes:
        return (
            b"\x01"
            + bytes(4)
            + b"\x00"
            + bytes([network_id])
            + bytes([len(address)])
            + address
            + bytes(2)
        )

    with pytest.raises(MalformedMessageError, match="needs a 4-byte address"):
        AddrV2.decode(payload(1, bytes(5)))
    # unknown networks are kept, as BIP155 asks
    unknown = AddrV2.decode(payload(0x42, b"\x07" * 100))
    assert unknown.addresses[0].network_id == 0x42
    too_long = (
        b"\x01" + bytes(4) + b"\x00" + b"\x42" + b"\xfd" + struct.pack("<H", 513) + bytes(515)
    )
    with pytest.raises(MalformedMessageError, match="exceeds the maximum of 512"):
        AddrV2.decode(too_long)


def test_locator_maximum() -> None:
    assert len(GetHeaders.decode(GetHeaders(1, (bytes(32),) * 101).encode()).locator) == 101
    with pytest.raises(MalformedMessageError, match="maximum of 101"):
        GetHeaders.decode(GetHeaders(1, (bytes(32),) * 102).encode())


def test_version_limits_and_flags() -> None:
    version = Version.decode(NODE_VERSION)
    long_agent = (
        NODE_VERSION[:80] + b"\xfd" + struct.pack("<H", 257) + b"a" * 257 + NODE_VERSION[100:]
    )
    with pytest.raises(MalformedMessageError, match="user agent of 257 bytes"):
        Version.decode(long_agent)
    relay_at = len(NODE_VERSION) - 2
    with pytest.raises(MalformedMessageError, match="relay flag must be 0 or 1"):
        Version.decode(NODE_VERSION[:relay_at] + b"\x02\x00")
    with pytest.raises(MalformedMessageError, match="association id of 130 bytes"):
        Version.decode(NODE_VERSION[: relay_at + 1] + b"\x82" + bytes(130))
    # relay and association id are optional trailing fields
    assert Version.decode(NODE_VERSION[:relay_at]).relay is None
    assert Version.decode(NODE_VERSION[: relay_at + 1]).association_id is None
    with pytest.raises(MalformedMessageError, match="unexpected bytes"):
        Version.decode(NODE_VERSION + b"\x00")
    assert version.start_height == 2


def test_protoconf_rules_from_the_specification() -> None:
    with pytest.raises(MalformedMessageError, match="must not be 0"):
        Protoconf.decode(b"\x00")
    with pytest.raises(MalformedMessageError, match="below 1048576"):
        Protoconf.decode(b"\x01" + struct.pack("<I", 1_048_575))
    with pytest.raises(MalformedMessageError, match="exceeds 1048576"):
        Protoconf.decode(b"\x03" + struct.pack("<I", 2**21) + b"\x00" + bytes(1_048_576))
    # a newer peer's extra fields are kept, not refused
    newer = Protoconf.decode(b"\x03" + NODE_PROTOCONF[1:] + b"\x05\x06")
    assert newer.extra == b"\x05\x06"
    with pytest.raises(MalformedMessageError, match="unexpected bytes"):
        Protoconf.decode(NODE_PROTOCONF + b"\x00")


def test_reject_limits() -> None:
    with pytest.raises(MalformedMessageError, match="reject reason of 112 bytes"):
        Reject.decode(b"\x02tx\x10\x70" + b"r" * 112)
    with pytest.raises(MalformedMessageError, match="truncated rejected hash"):
        Reject.decode(b"\x02tx\x10\x01r" + bytes(31))


def test_fixed_size_messages() -> None:
    with pytest.raises(MalformedMessageError, match="truncated nonce"):
        Ping.decode(bytes(7))
    with pytest.raises(MalformedMessageError, match="announce flag must be 0 or 1"):
        SendCmpct.decode(b"\x02" + bytes(8))
    with pytest.raises(MalformedMessageError, match="cannot hold a transaction"):
        Tx.decode(bytes(9))
    assert FeeFilter.decode(struct.pack("<q", -1)).feerate == -1


# --- constructors refuse what cannot be encoded ------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Inv((InvVector(1, bytes(31)),)),
        lambda: Inv((InvVector(-1, bytes(32)),)),
        lambda: Headers(bytes(81)),
        lambda: Ping(1 << 64),
        lambda: Tx(bytes(9)),
        lambda: Reject("tx", 256, ""),
        lambda: Reject("tx", 1, "r" * 112),
        lambda: Reject("tx", 1, "", bytes(31)),
        lambda: Protoconf(2**21, None, 2),
        lambda: Protoconf(2**21, "Default", 2, b"\x00"),
        lambda: Addr((TimedAddress(0, 0, bytes(15), 1),)),
        lambda: AddrV2((AddrV2Entry(0, 0, 1, bytes(16), 1),)),
        lambda: NetworkAddress.from_host("not-an-ip", 1),
        lambda: Version(
            1, 0, 0, NetworkAddress(0, bytes(16), 0), NetworkAddress(0, bytes(16), 70_000), 0, "", 0
        ),
        lambda: Version(
            1,
            0,
            0,
            NetworkAddress(0, bytes(16), 0),
            NetworkAddress(0, bytes(16), 0),
            0,
            "",
            0,
            None,
            b"",
        ),
        lambda: GetHeaders(1, (bytes(32),), bytes(33)),
    ],
)
def test_constructors_raise_input_error(make: object) -> None:
    with pytest.raises(InputError):
        make()  # type: ignore[operator]


def test_verack_payload_is_empty() -> None:
    assert VerAck().encode() == b""
