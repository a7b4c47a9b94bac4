"""Issue 8.2 over 127.0.0.1: location forwarding seen by the recipient, a
1,000-peer peerlist read whole, a legacy peer kept alive by the ``!orderbook``
probe, and ``/health`` + ``/status`` over HTTP.

joinmarket-ng is not installable from PyPI, so its client is not run here; the
1,000-peer peerlist is also parsed by :func:`ng_style_peerlist`, written from
the wire format alone (comma-separated ``nick;location[;D][;F:a+b]``, one JSON
frame per line), independent of our own parser.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from peerpool.joinmarket import DirectoryClient, DirectoryServer
from peerpool.joinmarket.messages import ClientHandshake, private_line
from peerpool.joinmarket.protocol import NickAuthMode, PrivateMessage
from peerpool.joinmarket.server_state import ServerConfig
from peerpool.joinmarket.wire import MessageType, encode_frame
from tests.integration.test_joinmarket_load import Process, until
from tests.joinmarket.helpers import identity

MAKER_ONION = "b" * 56 + ".onion:5222"


async def test_recipient_learns_the_senders_onion() -> None:
    async with DirectoryServer("127.0.0.1", 0, "regtest") as server:
        maker = DirectoryClient(
            server.address, "regtest", identity=identity(1), location=MAKER_ONION
        )
        taker = DirectoryClient(server.address, "regtest", identity=identity(2))
        await maker.connect()
        await taker.connect()
        taker.peers.clear()  # know nothing of the maker but what the relay says
        await maker.send_private(taker.nick, "pubkey", "abc")
        message = await taker.receive(timeout=10)
        assert isinstance(message, PrivateMessage) and message.from_nick == maker.nick
        await until(lambda: maker.nick in taker.peers and taker.peers[maker.nick].reachable, 10)
        assert taker.peers[maker.nick].location == MAKER_ONION
        await maker.close()
        await taker.close()


def ng_style_peerlist(frames: list[dict]) -> dict[str, tuple[str, bool, frozenset[str]]]:
    peers: dict[str, tuple[str, bool, frozenset[str]]] = {}
    for frame in frames:
        assert frame["type"] == 789
        for item in frame["line"].split(","):
            nick, location, *flags = item.split(";")
            features = frozenset(
                f for flag in flags if flag.startswith("F:") for f in flag[2:].split("+")
            )
            peers[nick] = (location, "D" in flags, features)
    return peers


async def test_thousand_peer_peerlist_read_whole_by_both_parsers() -> None:
    crowd = 1000
    config = ServerConfig("regtest", max_peers=crowd + 10)
    async with DirectoryServer("127.0.0.1", 0, config=config) as server:
        others = Process(server.port, "storm", "--peers", str(crowd))
        try:
            await others.ready()
            ours = DirectoryClient(server.address, "regtest")
            await ours.connect()
            peers = await ours.get_peerlist(quiet=0.5)
            assert len(peers) == crowd + 1
            # a raw reader, line by line, as joinmarket-ng's client reads
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            nick = identity(7).nick
            hs = ClientHandshake(nick, "regtest", features=frozenset({"peerlist_features"}))
            writer.write(encode_frame(MessageType.HANDSHAKE, hs.to_line()))
            assert json.loads(await reader.readline())["type"] == 795
            writer.write(encode_frame(MessageType.GETPEERLIST, ""))
            frames = []
            while len(frames) < 2 or sum(f["line"].count(",") + 1 for f in frames) < crowd + 2:
                raw = await asyncio.wait_for(reader.readline(), 10)
                assert len(raw) < 16 * 1024  # the reference's LineReceiver limit
                frames.append(json.loads(raw))
            parsed = ng_style_peerlist(frames)
            assert len(parsed) == crowd + 2 and set(peers) <= set(parsed)
            assert not any(gone for _, gone, _ in parsed.values())
            assert parsed[nick][2] == frozenset({"peerlist_features"})
            writer.close()
            await ours.close()
        finally:
            others.stop()


class LegacyMaker:
    """A reference-style maker: no features (so no ping), answers !orderbook."""

    def __init__(self, n: int, answers: bool) -> None:
        self.identity = identity(n)
        self.answers = answers
        self.probes = 0
        self.closed = asyncio.Event()

    async def run(self, port: int, directory_nick: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        hs = ClientHandshake(self.identity.nick, "regtest")
        writer.write(encode_frame(MessageType.HANDSHAKE, hs.to_line()))
        while raw := await reader.readline():
            frame = json.loads(raw)
            if frame["type"] == 687 and frame["line"].endswith("!PUBLIC!orderbook"):
                self.probes += 1
                if self.answers:
                    line = private_line(
                        self.identity, directory_nick, "sw0reloffer", "0 27300 100000 0 0.0002"
                    )
                    writer.write(encode_frame(MessageType.PRIVMSG, line))
        self.closed.set()


async def test_legacy_maker_is_kept_alive_by_the_orderbook_probe() -> None:
    config = ServerConfig("regtest", idle_ping=0.3, idle_timeout=1.0)
    async with DirectoryServer("127.0.0.1", 0, config=config, tick_interval=0.1) as server:
        alive, silent = LegacyMaker(1, answers=True), LegacyMaker(2, answers=False)
        tasks = [asyncio.ensure_future(m.run(server.port, server.nick)) for m in (alive, silent)]
        await asyncio.wait_for(silent.closed.wait(), 10)  # evicted after 1 s of silence
        assert silent.probes >= 1
        await asyncio.sleep(1.5)
        assert not alive.closed.is_set() and alive.probes >= 2
        assert server.stats.closed_idle == 1
        for task in tasks:
            task.cancel()


async def test_health_and_status_over_http() -> None:
    config = ServerConfig("regtest")
    server = DirectoryServer("127.0.0.1", 0, config=config, http_port=0)
    await server.start()
    try:
        assert server.http_port and server.http_port != server.port
        client = DirectoryClient(server.address, "regtest", nick_auth=NickAuthMode.OFF)
        await client.connect()
        await client.send_public("orderbook")
        base = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/health") as response:
                assert response.status == 200 and await response.json() == {"status": "ok"}
            await until(lambda: server.stats.public_relayed == 1, 10)
            async with session.get(base + "/status") as response:
                status = await response.json()
        assert status["peers"]["ready"] == 1 and status["peers"]["connections"] == 1
        assert status["counters"]["public_relayed"] == 1
        assert status["network"] == "regtest" and status["nick"] == server.nick
        await client.close()
    finally:
        await server.close()


async def test_http_is_off_by_default() -> None:
    async with DirectoryServer("127.0.0.1", 0, "regtest") as server:
        assert server.http_port is None


@pytest.mark.parametrize("app_name", ["JoinMarket", "JOINMARKET"])
async def test_app_name_in_any_case(app_name: str) -> None:
    async with DirectoryServer("127.0.0.1", 0, "regtest") as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        line = json.dumps(
            {
                "app-name": app_name,
                "directory": False,
                "proto-ver": 5,
                "features": {},
                "nick": identity(1).nick,
                "network": "regtest",
            }
        )
        writer.write(encode_frame(MessageType.HANDSHAKE, line))
        answer = json.loads(json.loads(await asyncio.wait_for(reader.readline(), 10))["line"])
        assert answer["accepted"] is True
        writer.close()
