"""The sans-I/O Bitcoin protocol core, fed bytes: no sockets, no asyncio.

The peer's side is built here from the framing kernel and the payload codecs;
blocks come from peerpool.testing's builder, whose txids and offsets are
computed with hashlib independently of the kernels under test.
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.blocks import Chunk, merkle_root
from peerpool.bitcoin.budget import PayloadBudget
from peerpool.bitcoin.messages.framing import (
    MessageDecoder,
    checksum,
    encode_header,
    encode_message,
)
from peerpool.bitcoin.networks import Network, get_network, sha256d
from peerpool.bitcoin.protocol import (
    BSV_DEFAULT_PEER_MAX_PAYLOAD,
    BitcoinProtocol,
    HandshakeComplete,
    ProtocolConfig,
    State,
)
from peerpool.bitcoin.received import Block, BlockKind
from peerpool.errors import (
    BadMagicError,
    BitcoinProtocolError,
    ChecksumError,
    HandshakeError,
    InputError,
    MalformedMessageError,
    MessageTooLargeForPeerError,
    PayloadBudgetExceededError,
    PayloadTooLargeError,
    PeerDisconnectedError,
)
from peerpool.testing.blocks import BuiltBlock, ChainTip, build_block
from peerpool.testing.transactions import Coin

BSV = get_network("bsv-regtest")
BTC = get_network("btc-regtest")
PEER_NONCE = 0x1122334455667788


def peer_version(nonce: int = PEER_NONCE, version: int = msgs.PROTOCOL_VERSION) -> msgs.Version:
    return msgs.Version(
        version=version,
        services=msgs.NODE_NETWORK,
        timestamp=1_700_000_000,
        receiver=msgs.NetworkAddress.from_host("127.0.0.1", 1),
        sender=msgs.NetworkAddress.from_host("127.0.0.1", 18444),
        nonce=nonce,
        user_agent="/Bitcoin SV:1.0.13/",
        start_height=250,
        relay=True,
    )


def frame(network: Network, message: msgs.Message) -> bytes:
    return encode_message(network.magic, message.COMMAND, message.encode())


def sent(network: Network, proto: BitcoinProtocol) -> list[msgs.Message]:
    """Decode what the protocol wants to write (the peer's view of it)."""
    decoder = MessageDecoder(network.magic, 1 << 30, 1 << 30)
    return [msgs.decode_message(m.command, m.payload) for m in decoder.feed(proto.data_to_send())]


def established(
    network: Network = BSV,
    config: ProtocolConfig | None = None,
    budget: PayloadBudget | None = None,
) -> BitcoinProtocol:
    proto = BitcoinProtocol(network, config, nonce=42, budget=budget)
    proto.initiate()
    proto.receive_data(frame(network, peer_version()) + frame(network, msgs.VerAck()))
    proto.data_to_send()
    proto.events_received()
    assert proto.state is State.ESTABLISHED
    return proto


def feed_in_pieces(proto: BitcoinProtocol, data: bytes, seed: int) -> list[object]:
    rng = random.Random(seed)
    events: list[object] = []
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 5000)
        proto.receive_data(data[pos : pos + step])
        events.extend(proto.events_received())
        pos += step
    return events


def small_block(target_size: int = 0, seed: int = 0) -> BuiltBlock:
    tip = ChainTip(hash=BSV.genesis_hash, height=0, time=1_700_000_000, bits=0x207FFFFF)
    coin = Coin(bytes(range(32)), 0, 50 * 100_000_000) if target_size else None
    return build_block(tip, coin, target_size, seed=seed, now=1_700_000_001)


# --- the handshake ---------------------------------------------------------------


def test_bsv_handshake_sends_version_then_verack_and_protoconf() -> None:
    config = ProtocolConfig(start_height=7, user_agent="/test:1/", max_message_size=3 << 20)
    proto = BitcoinProtocol(BSV, config, peer_address=("127.0.0.1", 18444), nonce=99)
    proto.initiate()
    [version] = sent(BSV, proto)
    assert isinstance(version, msgs.Version)
    assert (version.nonce, version.start_height, version.user_agent) == (99, 7, "/test:1/")
    assert version.relay is True and version.receiver.port == 18444
    assert proto.state is State.CONNECTING

    proto.receive_data(frame(BSV, peer_version()))
    assert proto.events_received() == [peer_version()]
    replies = sent(BSV, proto)
    assert [type(m) for m in replies] == [msgs.VerAck, msgs.Protoconf]
    assert isinstance(replies[1], msgs.Protoconf)
    assert replies[1].max_recv_payload_length == 3 << 20
    assert proto.state is State.CONNECTING  # the peer's verack is still missing

    proto.receive_data(frame(BSV, msgs.VerAck()))
    events = proto.events_received()
    assert events == [msgs.VerAck(), HandshakeComplete(peer_version())]
    assert proto.established


def test_btc_handshake_announces_addrv2_and_wtxidrelay_before_verack() -> None:
    proto = BitcoinProtocol(BTC, ProtocolConfig(wtxid_relay=True, send_headers=True), nonce=1)
    proto.initiate()
    proto.data_to_send()
    proto.receive_data(frame(BTC, peer_version()))
    kinds = [type(m) for m in sent(BTC, proto)]
    assert kinds == [msgs.WtxidRelay, msgs.SendAddrV2, msgs.VerAck, msgs.SendHeaders]


def test_initiate_twice_is_an_error() -> None:
    proto = BitcoinProtocol(BSV)
    proto.initiate()
    with pytest.raises(InputError):
        proto.initiate()


@pytest.mark.parametrize(
    ("first", "match"),
    [
        (msgs.Ping(1), "before the peer's version"),
        (msgs.VerAck(), "before the peer's version"),
        (peer_version(nonce=42), "our own nonce"),
        (peer_version(version=209), "below"),
    ],
)
def test_handshake_violations(first: msgs.Message, match: str) -> None:
    proto = BitcoinProtocol(BSV, nonce=42)
    proto.initiate()
    with pytest.raises(HandshakeError, match=match):
        proto.receive_data(frame(BSV, first))
    assert proto.state is State.FAILED
    with pytest.raises(BitcoinProtocolError):  # stays failed
        proto.receive_data(frame(BSV, peer_version()))


def test_second_version_and_second_protoconf_are_violations() -> None:
    proto = established()
    with pytest.raises(HandshakeError, match="second version"):
        proto.receive_data(frame(BSV, peer_version()))
    proto = established()
    proto.receive_data(frame(BSV, msgs.Protoconf(2 << 20, "Default")))
    with pytest.raises(HandshakeError, match="second protoconf"):
        proto.receive_data(frame(BSV, msgs.Protoconf(2 << 20, "Default")))


def test_block_before_version_is_a_violation() -> None:
    proto = BitcoinProtocol(BSV)
    proto.initiate()
    with pytest.raises(HandshakeError):
        proto.receive_data(encode_message(BSV.magic, "block", bytes(small_block().raw)))


# --- control messages -------------------------------------------------------------


def test_ping_is_answered_and_still_delivered() -> None:
    proto = established()
    proto.receive_data(frame(BSV, msgs.Ping(0xDEADBEEF)))
    assert proto.events_received() == [msgs.Ping(0xDEADBEEF)]
    assert sent(BSV, proto) == [msgs.Pong(0xDEADBEEF)]


def test_sendcmpct_is_answered_once_without_asking_for_compact_blocks() -> None:
    proto = established()
    proto.receive_data(frame(BSV, msgs.SendCmpct(True, 1)) * 2)
    assert sent(BSV, proto) == [msgs.SendCmpct(False, 1)]
    assert len(proto.events_received()) == 2


def test_sendheaders_is_recorded() -> None:
    proto = established()
    assert not proto.peer_wants_headers
    proto.receive_data(frame(BSV, msgs.SendHeaders()))
    assert proto.peer_wants_headers


def test_events_come_in_stream_order_from_one_read() -> None:
    proto = established()
    stream = b"".join(
        frame(BSV, m) for m in (msgs.Ping(1), msgs.AuthCh(b"x" * 40), msgs.FeeFilter(500))
    )
    proto.receive_data(stream + encode_message(BSV.magic, "newthing", b"abc"))
    events = proto.events_received()
    assert events[:3] == [msgs.Ping(1), msgs.AuthCh(b"x" * 40), msgs.FeeFilter(500)]
    assert events[3] == msgs.UnknownMessage("newthing", b"abc")


# --- what the peer accepts from us ----------------------------------------------------


def test_sends_respect_the_peer_limit_before_and_after_protoconf() -> None:
    proto = established()
    big_tx = msgs.Tx(bytes(BSV_DEFAULT_PEER_MAX_PAYLOAD + 1))
    with pytest.raises(MessageTooLargeForPeerError):
        proto.send(big_tx)
    assert proto.data_to_send() == b""  # nothing half-queued
    proto.receive_data(frame(BSV, msgs.Protoconf(2 << 20, "BlockPriority,Default")))
    assert proto.peer_max_payload == 2 << 20
    proto.send(big_tx)
    assert [type(m) for m in sent(BSV, proto)] == [msgs.Tx]
    with pytest.raises(MessageTooLargeForPeerError):
        proto.send(msgs.Tx(bytes((2 << 20) + 1)))
    # blocks are exempt from the limit (protoconf specification)
    proto.send_raw("block", bytes(small_block(target_size=(2 << 20) + 10_000).raw))
    assert len(proto.data_to_send()) > 2 << 20


def test_getdata_is_split_to_fit_the_peer() -> None:
    items = [msgs.InvVector(msgs.InvType.BLOCK, struct.pack("<Q", i) * 4) for i in range(60_000)]
    proto = established()
    assert proto.send_getdata(items) == 3  # 1 MiB before protoconf: 29,126 entries each
    sizes = [len(m.items) for m in sent(BSV, proto) if isinstance(m, msgs.GetData)]
    assert sizes == [29_126, 29_126, 1_748]
    proto.receive_data(frame(BSV, msgs.Protoconf(2 * 1024 * 1024, "Default")))
    assert proto.send_getdata(items) == 2  # the specification's figure: 58,254 per message
    decoder = MessageDecoder(BSV.magic, 1 << 30, 1 << 30)
    getdatas = [
        msgs.GetData.decode(m.payload, max_entries=100_000)
        for m in decoder.feed(proto.data_to_send())
    ]
    assert [len(m.items) for m in getdatas] == [58_254, 1_746]
    assert [i for m in getdatas for i in m.items] == items


def test_sending_after_failure_raises() -> None:
    proto = established()
    with pytest.raises(BadMagicError):
        proto.receive_data(encode_message(BTC.magic, "ping", struct.pack("<Q", 1)))
    with pytest.raises(PeerDisconnectedError):
        proto.send(msgs.Ping(1))


# --- bad bytes ----------------------------------------------------------------------


def test_wrong_magic() -> None:
    proto = established()
    with pytest.raises(BadMagicError):
        proto.receive_data(frame(BTC, msgs.Ping(1)))
    assert proto.state is State.FAILED


def test_bad_checksum() -> None:
    proto = established()
    payload = struct.pack("<Q", 5)
    bad = encode_header(BSV.magic, "ping", len(payload), bytes(4)) + payload
    with pytest.raises(ChecksumError):
        proto.receive_data(bad)


def test_messages_before_a_framing_error_are_events_before_it_is_raised() -> None:
    proto = established()
    payload = struct.pack("<Q", 5)
    bad = encode_header(BSV.magic, "ping", len(payload), bytes(4)) + payload
    headers = msgs.Headers(bytes(80) * 5)
    with pytest.raises(ChecksumError):
        proto.receive_data(frame(BSV, msgs.Ping(1)) + frame(BSV, headers) + bad)
    assert proto.events_received() == [msgs.Ping(1), headers]
    assert sent(BSV, proto) == [msgs.Pong(1)]  # and the ping before it was answered


def test_a_payload_budget_is_shared_and_given_back() -> None:
    budget = PayloadBudget(3 << 20)
    config = ProtocolConfig(large_message_limit=1 << 20, max_message_size=4 << 20)
    one, two = (established(config=config, budget=budget) for _ in range(2))
    tx = encode_message(BSV.magic, "tx", bytes(2 << 20))
    one.receive_data(tx[:1000])
    assert budget.used == 2 << 20
    with pytest.raises(PayloadBudgetExceededError, match="budget"):
        two.receive_data(tx[:1000])
    one.receive_data(tx[1000:])
    assert one.events_received() == [msgs.Tx(bytes(2 << 20))] and budget.used == 0
    three = established(config=config, budget=budget)
    three.receive_data(tx[:1000])  # fits again
    three.release_budget()  # the connection ended mid-message
    assert budget.used == 0


def test_malformed_payload() -> None:
    proto = established()
    with pytest.raises(MalformedMessageError):
        proto.receive_data(encode_message(BSV.magic, "ping", b"\x01" * 7))


def test_oversized_message_fails_at_the_header() -> None:
    config = ProtocolConfig(
        large_message_limit=1 << 20, max_message_size=2 << 20, max_block_size=4 << 20
    )
    proto = established(config=config)
    length = (2 << 20) + 1
    with pytest.raises(PayloadTooLargeError, match="other than blocks"):
        proto.receive_data(encode_header(BSV.magic, "tx", length, bytes(4)))
    proto = established(config=config)
    with pytest.raises(PayloadTooLargeError):
        proto.receive_data(encode_header(BSV.magic, "block", (4 << 20) + 1, bytes(4)))


def test_message_limit_below_the_large_limit_is_enforced_at_the_header() -> None:
    config = ProtocolConfig(max_message_size=1 << 20)  # large_message_limit stays 32 MiB
    proto = established(config=config)
    with pytest.raises(PayloadTooLargeError):
        proto.receive_data(encode_header(BSV.magic, "inv", (1 << 20) + 1, bytes(4)))
    # a block between the two limits is still a SMALL block, delivered whole
    built = small_block(target_size=1_500_000, seed=8)
    proto = established(config=config)
    events = feed_in_pieces(proto, encode_message(BSV.magic, "block", bytes(built.raw)), seed=3)
    [block] = events
    assert isinstance(block, Block) and block.kind is BlockKind.SMALL
    assert block.raw == bytes(built.raw)
    np.testing.assert_array_equal(block.tx_offsets, built.tx_offsets)


def test_small_block_above_the_block_limit() -> None:
    block = small_block(target_size=50_000)
    proto = established(config=ProtocolConfig(max_block_size=40_000))
    with pytest.raises(PayloadTooLargeError):
        proto.receive_data(encode_message(BSV.magic, "block", bytes(block.raw)))


def test_truncated_payload_then_eof() -> None:
    proto = established()
    message = frame(BSV, msgs.Tx(bytes(100)))
    proto.receive_data(message[:50])
    assert proto.in_message
    with pytest.raises(PeerDisconnectedError, match="middle of a message"):
        proto.receive_eof()


def test_eof_between_messages_is_clean() -> None:
    proto = established()
    proto.receive_data(frame(BSV, msgs.Ping(3)))
    proto.receive_eof()
    assert proto.state is State.CLOSED


@pytest.mark.parametrize("large", [False, True])
def test_garbage_block_is_malformed(large: bool) -> None:
    limit = 1 << 20
    config = ProtocolConfig(large_message_limit=limit if large else 32 << 20)
    proto = established(config=config)
    size = limit + 10 if large else 1000
    payload = bytes(80) + b"\x02" + b"\xff" * (size - 81)  # two transactions of nonsense
    with pytest.raises(MalformedMessageError, match="block"):
        proto.receive_data(encode_message(BSV.magic, "block", payload))


def test_block_payload_with_trailing_bytes_is_malformed() -> None:
    built = small_block()
    proto = established(config=ProtocolConfig(large_message_limit=1 << 20))
    with pytest.raises(MalformedMessageError):
        proto.receive_data(encode_message(BSV.magic, "block", bytes(built.raw) + b"\x00"))


# --- blocks -------------------------------------------------------------------------


def test_small_block_is_delivered_whole_with_offsets() -> None:
    built = small_block(target_size=200_000, seed=3)
    proto = established()
    events = feed_in_pieces(proto, encode_message(BSV.magic, "block", bytes(built.raw)), seed=1)
    [block] = events
    assert isinstance(block, Block) and block.kind is BlockKind.SMALL
    assert block.hash == built.hash and block.raw == bytes(built.raw)
    assert block.size == built.size and block.num_chunks == 0
    np.testing.assert_array_equal(block.tx_offsets, built.tx_offsets)
    assert block.tx_count == len(built.txids)


def check_large_block(built: BuiltBlock, events: list[object], chunk_size: int) -> None:
    chunks = [e for e in events if isinstance(e, Chunk)]
    block = events[-1]
    assert isinstance(block, Block) and block.kind is BlockKind.LARGE
    assert all(isinstance(e, Chunk) for e in events[:-1])  # chunks first, then the block
    assert block.raw is None and block.hash == built.hash and block.size == built.size
    assert block.num_chunks == len(chunks) == -(-built.size // chunk_size)
    assert [c.chunk_num for c in chunks] == list(range(len(chunks)))
    np.testing.assert_array_equal(block.tx_offsets, built.tx_offsets)
    # every transaction sliced out by its offset hashes to the builder's txid
    raw = bytes(built.raw)
    txids = []
    for chunk in chunks:
        if not len(chunk.tx_offsets):  # one transaction larger than the chunk size
            assert chunk.data == b""
            continue
        ends = [*chunk.tx_offsets.tolist()[1:], chunk.start + len(chunk.data)]
        for start, end in zip(chunk.tx_offsets.tolist(), ends, strict=True):
            tx = chunk.data[start - chunk.start : end - chunk.start]
            assert tx == raw[start:end]
            txids.append(sha256d(tx))
    assert tuple(txids) == built.txids
    assert merkle_root(np.frombuffer(b"".join(txids), np.uint8).reshape(-1, 32)) == (
        block.merkle_root
    )


def test_large_block_comes_as_chunks_then_a_large_block() -> None:
    built = small_block(target_size=3_000_000, seed=5)
    chunk_size = 256 << 10
    config = ProtocolConfig(large_message_limit=1 << 20, chunk_size=chunk_size)
    proto = established(config=config)
    message = encode_message(BSV.magic, "block", bytes(built.raw))
    events = feed_in_pieces(proto, message + frame(BSV, msgs.Ping(9)), seed=2)
    assert events[-1] == msgs.Ping(9)  # what follows the block still arrives, in order
    check_large_block(built, events[:-1], chunk_size)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), chunk_kib=st.integers(1, 300))
def test_large_block_any_split_any_chunk_size(seed: int, chunk_kib: int) -> None:
    built = _HYPOTHESIS_BLOCK
    config = ProtocolConfig(large_message_limit=1 << 20, chunk_size=chunk_kib << 10)
    proto = established(config=config)
    events = feed_in_pieces(proto, encode_message(BSV.magic, "block", bytes(built.raw)), seed)
    check_large_block(built, events, chunk_kib << 10)


_HYPOTHESIS_BLOCK = small_block(target_size=1_200_000, seed=11)


def test_large_non_block_message_is_gathered_and_delivered() -> None:
    config = ProtocolConfig(large_message_limit=1 << 20, max_message_size=4 << 20)
    proto = established(config=config)
    raw_tx = bytes(random.Random(1).randbytes(3 << 20))
    events = feed_in_pieces(proto, frame(BSV, msgs.Tx(raw_tx)), seed=4)
    assert events == [msgs.Tx(raw_tx)]


def test_large_message_checksum_is_checked_at_the_end() -> None:
    config = ProtocolConfig(large_message_limit=1 << 20, max_message_size=4 << 20)
    proto = established(config=config)
    payload = bytes(2 << 20)
    wrong = bytes(a ^ 1 for a in checksum(payload))
    with pytest.raises(ChecksumError):
        proto.receive_data(encode_header(BSV.magic, "tx", len(payload), wrong) + payload)
    assert proto.events_received() == []  # nothing delivered from the bad message
