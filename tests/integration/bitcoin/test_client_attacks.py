"""Attacks that used to defeat the client (a fake peer speaking the wire
format): a drip that held every timeout, a failure erased right after it was
recorded, valid messages lost before a bad one, a failing peer store that
hung the client. Each ends in a typed error, promptly, with the peer store
telling what happened."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from peerpool.bitcoin import BitcoinClient, PeerStore
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.messages.framing import encode_header, encode_message
from peerpool.errors import (
    ChecksumError,
    MalformedMessageError,
    PayloadTooLargeError,
    PeerStoreWriteError,
    PeerTimeoutError,
)
from tests.bitcoin.chain import mine_chain
from tests.bitcoin.full_disk import full_disk
from tests.integration.bitcoin.fake_peer import NETWORK, FakeSide, fake_peer
from tests.integration.bitcoin.recording import WAIT, RecordingHandlers

MAGIC = NETWORK.magic
BAD_PING = encode_header(MAGIC, "ping", 8, b"\0\0\0\0") + struct.pack("<Q", 1)
#: Small timeouts so that each attack is over in seconds.
FAST = {"request_timeout": 1.0, "ping_interval": 0.3, "ping_timeout": 0.5, "stall_window": 1.0}


def client_for(address: str, peers: PeerStore, **kwargs: object) -> BitcoinClient:
    return BitcoinClient(address, NETWORK, peer_store=peers, **kwargs)  # type: ignore[arg-type]


def answering(request: type[msgs.Message], reply: bytes, *, drip: bool = False):  # type: ignore[no-untyped-def]
    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.expect(request)
        if drip:
            await side.drip(reply)
        else:
            await side.send_raw(reply)
        await side.silent()

    return script


# --- 1. a drip is bounded by the minimum rate; a request by its deadline ----------


@pytest.mark.parametrize("what", ["headers", "block"])
async def test_a_reply_dripped_a_byte_a_second_is_dropped(tmp_path: Path, what: str) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    if what == "headers":
        reply = encode_message(MAGIC, "headers", b"\x01" + bytes(81))
        script = answering(msgs.GetHeaders, reply, drip=True)
    else:
        reply = encode_message(MAGIC, "block", bytes(5000))
        script = answering(msgs.GetData, reply, drip=True)
    async with fake_peer(script) as address:
        # as in the issue, a byte comes more often than the ping and request
        # timeouts would notice silence: only the rate floor (1 s window) can tell
        client = client_for(address, peers, **{**FAST, "ping_timeout": 2.0, "request_timeout": 3.0})
        await asyncio.wait_for(client.connect(), WAIT)
        loop = asyncio.get_running_loop()
        started = loop.time()
        request = (
            client.get_headers([NETWORK.genesis_hash])
            if what == "headers"
            else client.get_block(bytes(32))
        )
        with pytest.raises(PeerTimeoutError, match="B/s, below the minimum") as info:
            await asyncio.wait_for(request, WAIT)
        # the drip would have lasted len(reply) seconds; the window is 1 s
        assert loop.time() - started < len(reply) / 2, info.value
        assert not client.is_connected
    record = peers.get(address)
    assert record is not None and record.failures == 1


async def test_small_messages_do_not_extend_a_deadline(tmp_path: Path) -> None:
    """A peer that keeps sending whole pings (all progress to a plain
    inactivity timer) but never the headers misses the deadline."""
    peers = PeerStore(tmp_path, "bsv-regtest")

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.expect(msgs.GetHeaders)
        for n in range(200):
            await side.send(msgs.Ping(n))
            await asyncio.sleep(0.1)

    async with fake_peer(script) as address:
        client = client_for(address, peers, **{**FAST, "ping_interval": 0})  # no keepalive
        await asyncio.wait_for(client.connect(), WAIT)
        with pytest.raises(PeerTimeoutError, match="no headers within 1 s"):
            await asyncio.wait_for(client.get_headers([NETWORK.genesis_hash]), WAIT)
    record = peers.get(address)
    assert record is not None and record.failures == 1


async def test_a_slow_but_steady_message_is_not_a_drip(tmp_path: Path) -> None:
    """200 kB over ~2 s (100 kB/s, above the 32 KiB/s floor) with a 0.5 s
    window and a 1 s deadline: the answer is queued behind it and comes."""
    peers = PeerStore(tmp_path, "bsv-regtest")
    raw_tx = bytes(200_000)
    tx = encode_message(MAGIC, "tx", raw_tx)
    headers = mine_chain(NETWORK.genesis_header, 3)

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.expect(msgs.GetHeaders)
        for start in range(0, len(tx), 10_000):
            await side.send_raw(tx[start : start + 10_000])
            await asyncio.sleep(0.1)
        await side.send(msgs.Headers(headers))
        await side.silent()

    handlers = RecordingHandlers()
    async with fake_peer(script) as address:
        client = client_for(address, peers, handlers=handlers, **{**FAST, "stall_window": 0.5})
        await asyncio.wait_for(client.connect(), WAIT)
        answer = await asyncio.wait_for(client.get_headers([NETWORK.genesis_hash]), WAIT)
        assert answer.headers == headers
        assert handlers.messages("tx") == [msgs.Tx(raw_tx)]
        await client.close()


# --- 2. a failure is not erased; connect() that ends not connected raises ---------


async def test_a_violation_right_after_the_handshake_fails_connect_and_is_recorded(
    tmp_path: Path,
) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    async with fake_peer(lambda side: side.handshake_then(BAD_PING)) as address:
        client = client_for(address, peers)
        with pytest.raises(ChecksumError):
            await asyncio.wait_for(client.connect(), WAIT)
        assert not client.is_connected
    record = peers.get(address)
    assert record is not None and record.last_connected is not None
    assert peers.is_banned(address) and "ChecksumError" in (record.ban_reason or "")


@pytest.mark.parametrize("same_write", [True, False], ids=["with-verack", "after"])
async def test_a_4_gib_inv_header_leaves_a_failure(tmp_path: Path, same_write: bool) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    header = encode_header(MAGIC, "inv", 4 << 30, b"\0\0\0\0")

    async def after(side: FakeSide) -> None:
        await side.handshake()
        await side.send_raw(header)
        await side.silent()

    script = (lambda side: side.handshake_then(header)) if same_write else after
    async with fake_peer(script) as address:
        client = client_for(address, peers)
        if same_write:
            with pytest.raises(PayloadTooLargeError):
                await asyncio.wait_for(client.connect(), WAIT)
        else:
            await asyncio.wait_for(client.connect(), WAIT)
            with pytest.raises(PayloadTooLargeError):
                await asyncio.wait_for(client.wait_closed(), WAIT)
    record = peers.get(address)
    assert record is not None and record.failures == 1


# --- 3. what arrived intact before a bad message is dispatched --------------------


async def test_valid_headers_before_a_bad_message_are_delivered(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    five = mine_chain(NETWORK.genesis_header, 5)
    reply = encode_message(MAGIC, "headers", msgs.Headers(five).encode()) + BAD_PING
    handlers = RecordingHandlers()
    async with fake_peer(answering(msgs.GetHeaders, reply)) as address:
        client = client_for(address, peers, handlers=handlers)
        await asyncio.wait_for(client.connect(), WAIT)
        answer = await asyncio.wait_for(client.get_headers([NETWORK.genesis_hash]), WAIT)
        assert answer.headers == five
        with pytest.raises(ChecksumError):
            await asyncio.wait_for(client.wait_closed(), WAIT)
    assert [m.headers for m in handlers.messages("headers")] == [five]
    assert peers.is_banned(address)


# --- 4. a failing peer store does not hang the client ------------------------------


async def test_a_full_disk_under_the_peer_store_ends_the_connection_promptly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer_closed = asyncio.Event()

    async def script(side: FakeSide) -> None:
        try:
            await side.handshake()
            await side.silent()  # returns (or raises a reset) when the client closes
        finally:
            peer_closed.set()

    with full_disk(tmp_path / "disk", monkeypatch) as folder:
        peers = PeerStore(folder, "bsv-regtest")
        async with fake_peer(script) as address:
            client = client_for(address, peers)
            with pytest.raises(PeerStoreWriteError):
                await asyncio.wait_for(client.connect(), WAIT)
            with pytest.raises(PeerStoreWriteError):
                await asyncio.wait_for(client.wait_closed(), WAIT)
            assert not client.is_connected
            await asyncio.wait_for(peer_closed.wait(), WAIT)


# --- 8. the extended header is for payloads the 32-bit length cannot hold --------


async def test_an_extmsg_ping_is_refused_and_banned(tmp_path: Path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    ping = struct.pack("<Q", 9)
    extended = encode_header(MAGIC, "ping", 0xFFFF_FFFF)[:36] + struct.pack("<Q", len(ping))

    async def script(side: FakeSide) -> None:
        await side.handshake()
        await side.send_raw(extended + ping)
        await side.silent()

    async with fake_peer(script) as address:
        client = client_for(address, peers)
        await asyncio.wait_for(client.connect(), WAIT)
        with pytest.raises(MalformedMessageError, match="32-bit length"):
            await asyncio.wait_for(client.wait_closed(), WAIT)
    assert peers.is_banned(address)
