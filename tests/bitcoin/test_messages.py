"""Message payload codecs: real payloads from the Bitcoin SV node, and hypothesis round trips.

The strategies here are shared with test_messages_malformed.py.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.bitcoin.messages import (
    MESSAGE_TYPES,
    PROTOCOL_VERSION,
    Addr,
    AddrV2,
    AddrV2Entry,
    AuthCh,
    FeeFilter,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvType,
    InvVector,
    MemPool,
    Message,
    NetworkAddress,
    NotFound,
    Ping,
    Pong,
    Protoconf,
    Reject,
    RejectCode,
    SendAddrV2,
    SendCmpct,
    SendHeaders,
    TimedAddress,
    Tx,
    UnknownMessage,
    VerAck,
    Version,
    WtxidRelay,
    decode_message,
)
from peerpool.bitcoin.networks import get_network

# --- payloads captured from the regtest node (Bitcoin SV 1.0.13) right after a handshake

NODE_VERSION = bytes.fromhex(
    "801101002100000000000000342c016b00000000000000000000000000000000000000000000000000000000"
    "00002100000000000000000000000000000000000000000000000000c25a09d3bd094f4a132f426974636f69"
    "6e2053563a312e302e31332f020000000100"
)
NODE_PROTOCONF = bytes.fromhex("020000200015426c6f636b5072696f726974792c44656661756c74")
NODE_AUTHCH = bytes.fromhex(
    "01000000200000002b81a9dcfddced1fe624b9276b9b274fef42da4fb97684b4bd40a6131b8d9888"
)
NODE_SENDCMPCT = bytes.fromhex("000100000000000000")
NODE_PING = bytes.fromhex("be1ad7c9b4e4def7")
NODE_HEADERS = bytes.fromhex(
    "020000002006226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f03b90429765b"
    "2001cf992cb73a9f26056df12071d39ffaaa3b402a80aed99ad1342c016bffff7f200000000000000000208960"
    "2e9d9ebe07b57fad71c478dbb53ac966084d60e6eb1ac0376ace19b0382c95ee8443fdfbe57ddd65dee36bda50"
    "14915d49260253f93495d7ea2ae963c821352c016bffff7f200000000000"
)
# the node's answer to a "tx" message that does not parse
NODE_REJECT = bytes.fromhex("02747801156572726f722070617273696e67206d657373616765")


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def test_node_version() -> None:
    version = Version.decode(NODE_VERSION)
    assert version.version == PROTOCOL_VERSION == 70016
    assert version.services == 0x21  # NODE_NETWORK | NODE_BITCOIN_CASH
    assert version.user_agent == "/Bitcoin SV:1.0.13/"
    assert version.start_height == 2
    assert version.relay is True
    # BSV appends an association id; empty when multistreams are off
    assert version.association_id == b""
    assert version.sender.services == 0x21
    assert version.receiver.host == "::"
    assert version.encode() == NODE_VERSION


def test_node_protoconf_advertises_two_mib() -> None:
    protoconf = Protoconf.decode(NODE_PROTOCONF)
    assert protoconf.max_recv_payload_length == 2 * 1024 * 1024
    assert protoconf.number_of_fields == 2
    assert protoconf.stream_policies == "BlockPriority,Default"
    assert protoconf.encode() == NODE_PROTOCONF


def test_node_follow_up_messages() -> None:
    assert AuthCh.decode(NODE_AUTHCH).payload == NODE_AUTHCH
    assert SendCmpct.decode(NODE_SENDCMPCT) == SendCmpct(announce=False, version=1)
    assert Ping.decode(NODE_PING).nonce == int.from_bytes(NODE_PING, "little")
    assert SendHeaders.decode(b"") == SendHeaders()
    reject = Reject.decode(NODE_REJECT)
    assert (reject.message, reject.code, reject.reason) == ("tx", 1, "error parsing message")
    assert reject.code == RejectCode.MALFORMED
    assert reject.data == b"" and reject.hash_hex is None


def test_node_headers_link_to_regtest_genesis() -> None:
    headers = Headers.decode(NODE_HEADERS)
    assert headers.count == 2
    first, second = headers.header(0), headers.header(1)
    assert first[4:36] == get_network("bsv-regtest").genesis_hash
    assert second[4:36] == sha256d(first)
    assert list(headers.iter_headers()) == [first, second]
    assert headers.encode() == NODE_HEADERS
    with pytest.raises(IndexError):
        headers.header(2)


def test_the_registry_covers_every_command_the_issue_names() -> None:
    wanted = [
        "version",
        "verack",
        "ping",
        "pong",
        "sendheaders",
        "getheaders",
        "headers",
        "getblocks",
        "inv",
        "getdata",
        "notfound",
        "tx",
        "mempool",
        "addr",
        "addrv2",
        "sendaddrv2",
        "feefilter",
        "sendcmpct",
        "wtxidrelay",
        "protoconf",
        "reject",
        "authch",
    ]
    for command in wanted:
        assert command == MESSAGE_TYPES[command].COMMAND


def test_unknown_command_is_kept_not_rejected() -> None:
    message = decode_message("cmpctblock", b"\x01\x02")
    assert message == UnknownMessage("cmpctblock", b"\x01\x02")
    assert message.encode() == b"\x01\x02"


def test_inv_types_keep_unknown_values() -> None:
    inv = Inv.decode(
        Inv((InvVector(0x12345, bytes(32)), InvVector(InvType.BLOCK, b"\x01" * 32))).encode()
    )
    assert inv.items[0].kind == 0x12345
    assert inv.items[1].kind == InvType.BLOCK == 2


def test_network_address_text_forms() -> None:
    v4 = NetworkAddress.from_host("127.0.0.1", 18444, 1)
    assert v4.ip == bytes(10) + b"\xff\xff\x7f\x00\x00\x01"
    assert v4.host == "127.0.0.1"
    assert NetworkAddress.from_host("2001:db8::1", 8333).host == "2001:db8::1"
    # port is big-endian on the wire, unlike everything else
    assert v4.encode()[-2:] == (18444).to_bytes(2, "big")


# --- strategies -------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
u64 = st.integers(0, 0xFFFF_FFFF_FFFF_FFFF)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
i64 = st.integers(-(1 << 63), (1 << 63) - 1)
hashes = st.binary(min_size=32, max_size=32)
ips = st.binary(min_size=16, max_size=16)


def texts(max_bytes: int) -> st.SearchStrategy[str]:
    # any text, including non-ASCII, whose UTF-8 form fits the protocol limit
    return st.text(st.characters(blacklist_categories=("Cs",)), max_size=max_bytes).filter(
        lambda s: len(s.encode()) <= max_bytes
    )


network_addresses = st.builds(NetworkAddress, u64, ips, u16)


@st.composite
def versions(draw: st.DrawFn) -> Version:
    relay = draw(st.one_of(st.none(), st.booleans()))
    association = None if relay is None else draw(st.one_of(st.none(), st.binary(max_size=129)))
    return Version(
        draw(i32), draw(u64), draw(i64), draw(network_addresses), draw(network_addresses),
        draw(u64), draw(texts(256)), draw(i32), relay, association,
    )  # fmt: skip


inv_items = st.lists(st.builds(InvVector, u32, hashes), max_size=40).map(tuple)


@st.composite
def addrv2_entries(draw: st.DrawFn) -> AddrV2Entry:
    network_id = draw(u8)
    sizes = {1: 4, 2: 16, 3: 10, 4: 32, 5: 32, 6: 16}
    if network_id in sizes:
        address = draw(st.binary(min_size=sizes[network_id], max_size=sizes[network_id]))
    else:
        address = draw(st.binary(max_size=512))
    return AddrV2Entry(draw(u32), draw(u64), network_id, address, draw(u16))


@st.composite
def protoconfs(draw: st.DrawFn) -> Protoconf:
    fields = draw(st.integers(1, 2**64 - 1))
    policies = None if fields == 1 else draw(texts(650))
    extra = draw(st.binary(max_size=64)) if fields > 2 else b""
    return Protoconf(draw(st.integers(1_048_576, 0xFFFF_FFFF)), policies, fields, extra)


MESSAGES: st.SearchStrategy[Message] = st.one_of(
    versions(),
    st.just(VerAck()),
    st.just(SendHeaders()),
    st.just(MemPool()),
    st.just(GetAddr()),
    st.just(SendAddrV2()),
    st.just(WtxidRelay()),
    st.builds(Ping, u64),
    st.builds(Pong, u64),
    st.builds(FeeFilter, i64),
    st.builds(SendCmpct, st.booleans(), u64),
    st.builds(Inv, inv_items),
    st.builds(GetData, inv_items),
    st.builds(NotFound, inv_items),
    st.builds(GetHeaders, u32, st.lists(hashes, max_size=101).map(tuple), hashes),
    st.builds(GetBlocks, u32, st.lists(hashes, max_size=101).map(tuple), hashes),
    st.integers(0, 30).flatmap(lambda n: st.binary(min_size=80 * n, max_size=80 * n)).map(Headers),
    st.builds(Tx, st.binary(min_size=10, max_size=400)),
    st.builds(Addr, st.lists(st.builds(TimedAddress, u32, u64, ips, u16), max_size=30).map(tuple)),
    st.builds(AddrV2, st.lists(addrv2_entries(), max_size=10).map(tuple)),
    protoconfs(),
    st.builds(Reject, texts(12), u8, texts(111), st.sampled_from([b"", b"\x07" * 32])),
    st.builds(AuthCh, st.binary(max_size=100)),
)


@settings(deadline=None)
@given(MESSAGES)
def test_round_trip(message: Message) -> None:
    payload = message.encode()
    assert type(message).decode(payload) == message
    assert decode_message(message.COMMAND, payload) == message
    # any bytes-like payload will do
    assert type(message).decode(bytearray(payload)) == message


@settings(deadline=None)
@given(st.lists(st.builds(InvVector, u32, hashes), min_size=1, max_size=5).map(tuple))
def test_inventory_limit_can_be_raised_for_protoconf_peers(items: tuple[InvVector, ...]) -> None:
    payload = Inv(items).encode()
    assert decode_message("inv", payload, max_inv_entries=len(items)) == Inv(items)
