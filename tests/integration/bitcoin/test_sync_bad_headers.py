"""A peer that answers getheaders with headers that fail proof of work or do
not connect (a fake asyncio peer): typed error, connection closed, peer banned,
and the header store keeps everything it had plus the valid headers before
the bad one."""

from __future__ import annotations

import asyncio
import hashlib
import struct
from pathlib import Path

import pytest

from peerpool.bitcoin import BitcoinClient, HeadersStore, PeerStore
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.sync import sync_headers
from peerpool.errors import BadHeaderError, HeaderError, OrphanHeadersError
from tests.bitcoin.chain import mine_chain
from tests.integration.bitcoin.fake_peer import NETWORK, FakeSide, fake_peer
from tests.integration.bitcoin.recording import WAIT

GENESIS = NETWORK.genesis_header
# 12 valid regtest headers on genesis, mined once for every test
CHAIN = mine_chain(GENESIS, 12, start_time=1_700_000_000)
HEADERS = [CHAIN[i : i + 80] for i in range(0, len(CHAIN), 80)]


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def failing_pow(prev_header: bytes) -> bytes:
    """A header on ``prev_header`` whose hash misses the regtest target."""
    target = 0x7FFFFF << (8 * (0x20 - 3))
    for nonce in range(1 << 20):
        header = struct.pack(
            "<i32s32sIII", 4, sha256d(prev_header), bytes(32), 1, 0x207FFFFF, nonce
        )
        if int.from_bytes(sha256d(header), "little") > target:
            return header
    raise AssertionError("every nonce met the target")


def answering(*batches: bytes):  # type: ignore[no-untyped-def]
    """A peer that answers each getheaders with the next batch."""

    async def script(side: FakeSide) -> None:
        await side.handshake(start_height=12)
        for batch in batches:
            await side.expect(msgs.GetHeaders)
            await side.send(msgs.Headers(batch))
        await side.silent()

    return script


async def sync_against(script, tmp_path: Path, preload: int = 0):  # type: ignore[no-untyped-def]
    """Preload ``preload`` good headers, sync from the fake peer; returns the
    sync's error, the error the connection ended with (None: still open), the
    best chain after reopening the store, the peer store and the address."""
    peers = PeerStore(tmp_path, "bsv-regtest")
    path = tmp_path / "headers"
    with HeadersStore(path, NETWORK) as store:
        if preload:
            store.connect(b"".join(HEADERS[:preload]))
    async with fake_peer(script) as address:
        client = BitcoinClient(address, NETWORK, peer_store=peers, ping_interval=0)
        await asyncio.wait_for(client.connect(), WAIT)
        with HeadersStore(path, NETWORK) as store, pytest.raises(HeaderError) as caught:
            await asyncio.wait_for(sync_headers(client, store), WAIT)
        closed_with: BaseException | None = None
        if not client.is_connected:  # misbehaving() closed it before raising
            try:
                await asyncio.wait_for(client.wait_closed(), WAIT)
            except Exception as exc:
                closed_with = exc
        await client.close()
    with HeadersStore(path, NETWORK) as store:
        kept = [store.hash_at(h) for h in range(store.height + 1)]
    return caught.value, closed_with, kept, peers, address


def hashes_of(headers: list[bytes]) -> list[bytes]:
    return [sha256d(h) for h in headers]


async def test_header_failing_proof_of_work(tmp_path: Path) -> None:
    bad = failing_pow(HEADERS[7])
    batch = b"".join(HEADERS[4:8]) + bad + HEADERS[9]
    error, closed_with, kept, peers, address = await sync_against(
        answering(batch), tmp_path, preload=4
    )
    assert isinstance(error, BadHeaderError) and error.reason == "high-hash" and error.index == 4
    assert closed_with is error  # the connection was closed for it
    assert peers.is_banned(address)
    # what was there, plus the four valid headers before the bad one
    assert kept == [NETWORK.genesis_hash, *hashes_of(HEADERS[:8])]


async def test_headers_that_do_not_link(tmp_path: Path) -> None:
    batch = b"".join(HEADERS[2:5]) + HEADERS[6]  # header 5 missing in the middle
    error, closed_with, kept, peers, address = await sync_against(
        answering(batch), tmp_path, preload=2
    )
    assert isinstance(error, BadHeaderError) and error.reason == "prev-blk-not-found"
    assert isinstance(closed_with, BadHeaderError)
    assert peers.is_banned(address)
    assert kept == [NETWORK.genesis_hash, *hashes_of(HEADERS[:5])]


async def test_headers_that_never_connect_to_our_chain(tmp_path: Path) -> None:
    orphan = b"".join(HEADERS[6:9])
    error, closed_with, kept, peers, address = await sync_against(
        answering(orphan, orphan), tmp_path, preload=3
    )
    assert isinstance(error, HeaderError) and isinstance(error.__cause__, OrphanHeadersError)
    assert closed_with is None  # not proof of malice: the connection stays
    assert not peers.is_banned(address)
    assert kept == [NETWORK.genesis_hash, *hashes_of(HEADERS[:3])]
