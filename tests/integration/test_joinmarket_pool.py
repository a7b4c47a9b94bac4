"""DirectoryClient, DirectoryClientPool and MultiDirectoryClient against several of
our DirectoryServers on 127.0.0.1: one down, one killed mid-session, makers on
several directories answering through one or all of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from peerpool.errors import DirectoryConnectionError, HandshakeRejectedError
from peerpool.joinmarket import (
    DirectoryClient,
    DirectoryClientPool,
    DirectoryServer,
    MultiDirectoryClient,
)
from peerpool.joinmarket.messages import DirectoryHandshake, private_line
from peerpool.joinmarket.protocol import NickAuthMode, PublicMessage
from peerpool.joinmarket.wire import MessageType, encode_frame
from tests.joinmarket.helpers import identity
from tests.joinmarket.makers import DirectListener, Maker
from tests.net.ports import closed_port

TAKER = 50


@contextlib.asynccontextmanager
async def directories(n: int, **kw) -> AsyncIterator[list[DirectoryServer]]:
    servers = [DirectoryServer("127.0.0.1", 0, "regtest", **kw) for _ in range(n)]
    for s in servers:
        await s.start()
    try:
        yield servers
    finally:
        for s in servers:
            await s.close()


async def eventually(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async def loop() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), timeout)


async def test_directory_client_handshake_peerlist_and_nick_auth() -> None:
    async with directories(1, directory_id="dir-a:5222") as (srv,):
        client = DirectoryClient(
            srv.address,
            "regtest",
            identity=identity(1),
            nick_auth=NickAuthMode.REQUIRE,
            directory_id="dir-a:5222",
        )
        await client.connect()
        assert client.handshake is not None and client.handshake.nick_verified
        other = DirectoryClient(srv.address, "regtest", identity=identity(2))
        await other.connect()  # no directory id configured for a TCP host: no nick auth
        assert not other.handshake.nick_verified  # type: ignore[union-attr]
        peers = await client.get_peerlist()
        assert set(peers) == {identity(1).nick, identity(2).nick}
        await other.send_public("hello", "world")
        assert await client.receive(5) == PublicMessage(identity(2).nick, "hello world")
        await other.close()
        await eventually(lambda: identity(2).nick not in client.peers)
        await client.close()
        await asyncio.wait_for(client.wait_closed(), 5)


async def test_wrong_network_is_a_typed_error() -> None:
    async with directories(1) as (srv,):
        client = DirectoryClient(srv.address, "signet", identity=identity(1))
        with pytest.raises(HandshakeRejectedError, match="network"):
            await client.connect()


async def test_pool_with_one_directory_down() -> None:
    async with directories(3) as servers:
        dead = f"127.0.0.1:{closed_port()}"
        pool = DirectoryClientPool(
            [s.address for s in servers] + [dead],
            "regtest",
            identity=identity(TAKER),
            connect_timeout=5,
        )
        outcome = await pool.connect_all_parallel()
        assert sorted(outcome.connected) == sorted(s.address for s in servers)
        assert set(outcome.errors) == {dead}
        assert pool.list_disconnected() == [dead]
        assert await pool.send_public_all("hello") == 3
        await pool.close_all()


async def test_orderbook_deduplicated_across_directories_and_nick_tracking() -> None:
    left: list[str] = []
    async with directories(3) as (a, b, c):
        m1 = await Maker(1, [a.address, b.address], offers=2, everywhere=True).start()
        m2 = await Maker(2, [b.address, c.address], offers=3).start()
        m3 = await Maker(3, [a.address], offers=1).start()
        taker = MultiDirectoryClient(
            [a.address, b.address, c.address],
            "regtest",
            identity=identity(TAKER),
            on_nick_leave=left.append,
        )
        await taker.connect_all_with_retry(timeout=10)
        for client in taker.clients.values():
            await client.get_peerlist()
        offers = await taker.fetch_orderbook(quiet=0.5, max_wait=10)
        keys = sorted(o.key for o in offers)
        expected = [
            (m1.nick, 0),
            (m1.nick, 1),
            (m2.nick, 0),
            (m2.nick, 1),
            (m2.nick, 2),
            (m3.nick, 0),
        ]
        assert keys == sorted(expected)
        assert all(o.fidelity_bond is not None and len(o.fidelity_bond) == 252 for o in offers)
        # m1 answered through a and b, each once: both copies seen, one kept
        assert taker.seen_on[m1.nick] == {a.address, b.address}

        # directory b dies mid-session: the pool drops it, nobody has left yet
        await b.close()
        await eventually(lambda: b.address not in taker.clients)
        assert left == []
        # m2 leaves c too: now no directory knows it
        await m2.stop()
        await eventually(lambda: m2.nick in left)
        assert left == [m2.nick]
        # m1 leaves a: gone (b, its other directory, is already dead)
        await m1.stop()
        await eventually(lambda: m1.nick in left)
        assert m3.nick not in left
        await m3.stop()
        await taker.close_all()


async def test_a_directory_that_stops_answering_mid_orderbook() -> None:
    async with directories(1) as (live,):
        maker = await Maker(1, [live.address]).start()

        # a directory that handshakes and then never says another word
        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            hs = DirectoryHandshake(identity(99).nick, "regtest", True)
            writer.write(encode_frame(MessageType.DN_HANDSHAKE, hs.to_line()))
            await writer.drain()
            await reader.read()  # swallow everything, answer nothing
            writer.close()

        silent = await asyncio.start_server(mute, "127.0.0.1", 0)
        silent_addr = f"127.0.0.1:{silent.sockets[0].getsockname()[1]}"
        taker = MultiDirectoryClient(
            [live.address, silent_addr], "regtest", identity=identity(TAKER)
        )
        await taker.connect_all_parallel()
        assert len(taker.clients) == 2
        loop = asyncio.get_running_loop()
        start = loop.time()
        offers = await taker.fetch_orderbook(quiet=0.5, max_wait=8)
        assert {o.counterparty for o in offers} == {maker.nick}
        assert loop.time() - start < 8
        await maker.stop()
        await taker.close_all()
        silent.close()


async def test_sessions_responses_errors_and_duplicates() -> None:
    async with directories(2) as (a, b):
        m1 = await Maker(1, [a.address, b.address], sigs=3, everywhere=True).start()
        m2 = await Maker(2, [b.address], refuse=True).start()
        taker = MultiDirectoryClient([a.address, b.address], "regtest", identity=identity(TAKER))
        await taker.connect_all_parallel()
        await taker.fetch_orderbook(quiet=0.5, max_wait=10)
        for nick in (m1.nick, m2.nick):
            channel = await taker.start_session(nick, prefer_direct=False)
            assert channel.startswith("directory:")
        await taker.send_private(m1.nick, "fill", "0 100000")
        await taker.send_private(m2.nick, "fill", "0 100000")
        got = await taker.wait_for_responses([m1.nick, m2.nick], "pubkey", timeout=10)
        # m1 answered through both directories: one copy counted
        assert [m.data for m in got[m1.nick].messages] == ["maker-session-key"]
        assert [m.data for m in got[m2.nick].messages] == ["maker-session-key"]
        await taker.send_private(m2.nick, "auth", "proof")
        await taker.send_private(m1.nick, "tx", "unsigned")
        sigs = await taker.wait_for_responses(
            [m1.nick, m2.nick], "sig", timeout=10, expected_counts={m1.nick: 3}
        )
        assert sigs[m2.nick].failed and sigs[m2.nick].error == "refused"
        assert [m.data for m in sigs[m1.nick].messages] == [f"signature-{i}" for i in range(3)]
        # every message of m1's session went through its bound directory
        bound = taker.sessions[m1.nick][len("directory:") :]
        assert {c for c in (a.address, b.address)} >= {bound}
        assert len(m1.received) >= 2
        await m1.stop()
        await m2.stop()
        await taker.close_all()


async def test_spoofed_and_badly_signed_answers_are_not_accepted() -> None:
    async with directories(1) as (a,):
        maker = await Maker(1, [a.address]).start()
        mallory = DirectoryClient(a.address, "regtest", identity=identity(9))
        await mallory.connect()
        taker = MultiDirectoryClient([a.address], "regtest", identity=identity(TAKER))
        await taker.connect_all_parallel()
        client = next(iter(taker.clients.values()))
        waiting = asyncio.create_task(taker.wait_for_responses([maker.nick], "pubkey", timeout=1.5))
        await asyncio.sleep(0.1)
        # mallory signs with its own key but claims to be the maker: the directory
        # drops it (sender is not mallory's nick); then a line with a broken signature
        spoof = maker.nick + private_line(identity(9), identity(TAKER).nick, "pubkey", "x")[16:]
        mallory.protocol._out.append(encode_frame(MessageType.PRIVMSG, spoof))
        await mallory._flush()
        bad = private_line(identity(9), identity(TAKER).nick, "pubkey", "x")
        mallory.protocol._out.append(
            encode_frame(MessageType.PRIVMSG, bad.replace("pubkey x", "pubkey y"))
        )
        await mallory._flush()
        got = await waiting
        assert got[maker.nick].messages == [] and not got[maker.nick].failed
        await eventually(lambda: client.dropped_invalid >= 1)
        assert a.stats.dropped_spoofed >= 1
        await mallory.close()
        await maker.stop()
        await taker.close_all()


async def test_direct_channel_preferred_then_directory_fallback() -> None:
    async with directories(1) as (a,):
        listener = await DirectListener().start()
        maker = Maker(1, [a.address], location=f"127.0.0.1:{listener.port}")
        listener.maker = maker
        await maker.start()
        taker = MultiDirectoryClient([a.address], "regtest", identity=identity(TAKER))
        await taker.connect_all_parallel()
        await next(iter(taker.clients.values())).get_peerlist()
        assert await taker.start_session(maker.nick) == "direct"
        assert await taker.send_private(maker.nick, "fill", "0 1") == "direct"
        got = await taker.wait_for_responses([maker.nick], "pubkey", timeout=10)
        assert got[maker.nick].messages and listener.connections == 1
        # forced through the directory, the same session can still be reached
        used = await taker.send_private(
            maker.nick, "fill", "0 2", force_channel=f"directory:{a.address}"
        )
        assert used == f"directory:{a.address}"
        # the maker's onion goes away: a bound direct session fails loudly...
        await listener.stop()
        await taker.direct[maker.nick].close()
        await eventually(lambda: maker.nick not in taker.direct)
        with pytest.raises(DirectoryConnectionError):
            await taker.send_private(maker.nick, "tx", "x")
        # ...and a new session falls back to the directory
        assert await taker.start_session(maker.nick) == f"directory:{a.address}"
        await maker.stop()
        await taker.close_all()


async def test_pool_survives_garbage_from_a_directory() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"this is not json\r\n")
        await writer.drain()
        await reader.read()

    bad = await asyncio.start_server(garbage, "127.0.0.1", 0)
    addr = f"127.0.0.1:{bad.sockets[0].getsockname()[1]}"
    async with directories(1) as (good,):
        pool = DirectoryClientPool(
            [addr, good.address], "regtest", identity=identity(TAKER), connect_timeout=5
        )
        outcome = await pool.connect_all_parallel()
        assert outcome.connected == [good.address]
        assert "JSON" in str(outcome.errors[addr])
        await pool.close_all()
    bad.close()
