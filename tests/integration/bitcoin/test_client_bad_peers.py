"""Misbehaving peers (a fake asyncio peer): each case gives a typed error, the
connection is closed, and the peer store records it (banned where the peer
is broken or hostile, a failure otherwise)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from peerpool.bitcoin import BitcoinClient, PeerStore
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.messages.framing import encode_header, encode_message
from peerpool.bitcoin.networks import get_network
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.errors import (
    BadMagicError,
    ChecksumError,
    MalformedMessageError,
    PayloadTooLargeError,
    PeerDisconnectedError,
    PeerTimeoutError,
)
from tests.integration.bitcoin.fake_peer import NETWORK, FakeSide, fake_peer
from tests.integration.bitcoin.recording import WAIT, RecordingHandlers

MAGIC = NETWORK.magic


def client_for(address: str, peers: PeerStore, **kwargs: object) -> BitcoinClient:
    return BitcoinClient(address, NETWORK, peer_store=peers, **kwargs)  # type: ignore[arg-type]


async def run_until_closed(client: BitcoinClient) -> BaseException:
    await asyncio.wait_for(client.connect(), WAIT)
    with pytest.raises(Exception) as caught:
        await asyncio.wait_for(client.wait_closed(), WAIT)
    assert not client.is_connected
    return caught.value


def after_handshake(data: bytes):  # type: ignore[no-untyped-def]
    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.send_raw(data)
        await side.silent()

    return script


PING = struct.pack("<Q", 1)
BAD_INPUT = {
    "wrong magic": (encode_message(get_network("btc-regtest").magic, "ping", PING), BadMagicError),
    "bad checksum": (encode_header(MAGIC, "ping", 8, b"\0\0\0\0") + PING, ChecksumError),
    "malformed payload": (encode_message(MAGIC, "ping", b"\x01" * 7), MalformedMessageError),
    "malformed headers": (
        encode_message(MAGIC, "headers", b"\x01" + bytes(80) + b"\x05"),
        MalformedMessageError,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
async def test_hostile_bytes_close_and_ban(case: str, tmp_path: Path) -> None:
    data, error_type = BAD_INPUT[case]
    peers = PeerStore(tmp_path, "bsv-regtest")
    async with fake_peer(after_handshake(data)) as address:
        client = client_for(address, peers)
        error = await run_until_closed(client)
    assert isinstance(error, error_type)
    assert peers.is_banned(address)
    record = peers.get(address)
    assert record is not None and error_type.__name__ in (record.ban_reason or "")


async def test_oversized_payload_is_refused_at_its_header(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    config = ProtocolConfig(max_message_size=2 << 20)
    header = encode_header(MAGIC, "tx", (2 << 20) + 1, b"\0\0\0\0")
    async with fake_peer(after_handshake(header)) as address:
        client = client_for(address, peers, config=config)
        error = await run_until_closed(client)
    assert isinstance(error, PayloadTooLargeError)
    record = peers.get(address)
    assert record is not None and record.failures == 1 and not peers.is_banned(address)


async def test_truncated_payload_then_close(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    message = encode_message(MAGIC, "tx", bytes(500))

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.send_raw(message[:300])  # then the connection closes

    async with fake_peer(script) as address:
        client = client_for(address, peers)
        error = await run_until_closed(client)
    assert isinstance(error, PeerDisconnectedError)
    assert "middle of a message" in str(error)


async def test_truncated_payload_then_silence_times_out(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    message = encode_message(MAGIC, "tx", bytes(500))
    async with fake_peer(after_handshake(message[:300])) as address:
        client = client_for(address, peers, ping_interval=0.2, ping_timeout=0.5)
        error = await run_until_closed(client)
    assert isinstance(error, PeerTimeoutError)
    record = peers.get(address)
    assert record is not None and record.failures == 1


async def test_peer_that_stops_answering_is_dropped(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.silent()  # never a pong

    async with fake_peer(script) as address:
        client = client_for(address, peers, ping_interval=0.2, ping_timeout=0.5)
        error = await run_until_closed(client)
    assert isinstance(error, PeerTimeoutError) and "pong" in str(error)
    record = peers.get(address)
    assert record is not None and record.failures == 1 and record.last_connected is not None


async def test_request_to_a_silent_peer_times_out(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.silent()

    async with fake_peer(script) as address:
        for what in ("headers", "block"):
            client = client_for(address, peers, ping_interval=0, request_timeout=0.5)
            await asyncio.wait_for(client.connect(), WAIT)
            request = (
                client.get_headers([NETWORK.genesis_hash])
                if what == "headers"
                else client.get_block(bytes(32))
            )
            with pytest.raises(PeerTimeoutError, match=what):
                await asyncio.wait_for(request, WAIT)
            # a missed deadline ends the connection, and is a failure in the store
            assert not client.is_connected
            with pytest.raises(PeerTimeoutError):
                await asyncio.wait_for(client.wait_closed(), WAIT)
    record = peers.get(address)
    assert record is not None and record.failures == 2


async def test_no_handshake_is_a_timeout(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")

    async def script(side: FakeSide) -> None:
        await side.silent()  # never sends its version

    async with fake_peer(script) as address:
        client = client_for(address, peers, handshake_timeout=0.5)
        with pytest.raises(PeerTimeoutError, match="handshake"):
            await asyncio.wait_for(client.connect(), WAIT)
    record = peers.get(address)
    assert record is not None and record.failures == 1 and record.last_connected is None


async def test_pending_requests_fail_when_the_peer_leaves(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    leave = asyncio.Event()

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.expect(msgs.GetHeaders)
        leave.set()  # and close without answering

    async with fake_peer(script) as address:
        client = client_for(address, peers, ping_interval=0)
        await asyncio.wait_for(client.connect(), WAIT)
        with pytest.raises(PeerDisconnectedError):
            await asyncio.wait_for(client.get_headers([NETWORK.genesis_hash]), WAIT)
    assert leave.is_set()


async def test_a_peer_busy_sending_is_not_timed_out(tmp_path: Path) -> None:
    """Its pong would be queued behind the message it is sending: the
    keepalive waits while bytes flow, and fires once they stop."""
    peers = PeerStore(tmp_path, "bsv-regtest")
    raw_tx = bytes(range(256)) * 12
    message = encode_message(MAGIC, "tx", raw_tx)

    async def script(side: FakeSide) -> None:
        await side.handshake()
        pieces = 60
        step = -(-len(message) // pieces)
        for start in range(0, len(message), step):  # about 3 s of dripping
            await side.send_raw(message[start : start + step])
            await asyncio.sleep(0.05)
        await side.silent()

    handlers = RecordingHandlers()
    async with fake_peer(script) as address:
        client = client_for(address, peers, handlers=handlers, ping_interval=0.1, ping_timeout=2.0)
        error = await run_until_closed(client)
    assert handlers.messages("tx") == [msgs.Tx(raw_tx)]
    assert isinstance(error, PeerTimeoutError)


async def test_peer_store_counts_each_ending_once(tmp_path: Path) -> None:
    """A peer that leaves in the middle of the handshake is one failure; one
    that leaves after it is none (a disconnect is not a fault)."""
    peers = PeerStore(tmp_path, "bsv-regtest")

    async def leaves_early(side: FakeSide) -> None:
        await side.expect(msgs.Version)  # then closes

    async def leaves_later(side: FakeSide) -> None:
        await side.handshake()

    async with fake_peer(leaves_early) as early, fake_peer(leaves_later) as later:
        with pytest.raises(PeerDisconnectedError):
            await asyncio.wait_for(client_for(early, peers).connect(), WAIT)
        client = client_for(later, peers)
        error = await run_until_closed(client)
    assert isinstance(error, PeerDisconnectedError)
    early_record, later_record = peers.get(early), peers.get(later)
    assert early_record is not None and early_record.failures == 1
    assert later_record is not None and later_record.failures == 0
    assert later_record.last_connected is not None
