"""BitcoinClient against the real regtest node: handshake, what the node sends, keepalive."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.bitcoin import BitcoinClient, Mode, PeerStore
from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.protocol import ProtocolConfig
from peerpool.errors import DialError, ModeError, SocksAuthError
from peerpool.testing import RegtestNode, free_port
from tests.integration.bitcoin.recording import WAIT, RecordingHandlers

pytestmark = pytest.mark.regtest


async def test_handshake_with_the_node(regtest_node: RegtestNode, tmp_path) -> None:
    handlers = RecordingHandlers()
    peers = PeerStore(tmp_path, "bsv-regtest")
    config = ProtocolConfig(user_agent="/peerpool-handshake-test/", start_height=3)
    client = BitcoinClient(
        regtest_node.p2p_address, "bsv-regtest", handlers, config=config, peer_store=peers
    )
    await asyncio.wait_for(client.connect(), WAIT)
    try:
        assert client.is_connected
        version = client.peer_version
        assert version is not None and version.start_height == regtest_node.block_count()
        assert "Bitcoin SV" in version.user_agent
        # the node's messages after verack (the issue lists them), in arrival order
        await handlers.wait_for("ping")
        commands = handlers.commands()
        assert commands[:2] == ["version", "verack"]
        for later in ("protoconf", "authch", "sendheaders", "sendcmpct", "ping"):
            assert later in commands
        assert commands.index("protoconf") < commands.index("ping")
        assert client.protocol.peer_max_payload == 2 * 1024 * 1024
        record = peers.get(regtest_node.p2p_address)
        assert record is not None and record.last_connected is not None

        # the node saw our version and our pong to its ping
        async def our_peer_info() -> dict[str, object]:
            while True:
                for info in await asyncio.to_thread(regtest_node.rpc, "getpeerinfo"):
                    if info.get("subver") == "/peerpool-handshake-test/" and "pingtime" in info:
                        return dict(info)
                await asyncio.sleep(0.1)

        info = await asyncio.wait_for(our_peer_info(), WAIT)
        assert info["startingheight"] == 3
        assert info["inbound"] is True
    finally:
        await client.close()
    await asyncio.wait_for(client.wait_closed(), WAIT)  # closed by us: no error
    assert not client.is_connected


async def test_keepalive_pings_get_pongs(regtest_node: RegtestNode) -> None:
    handlers = RecordingHandlers()
    client = BitcoinClient(
        regtest_node.p2p_address, "bsv-regtest", handlers, ping_interval=0.05, ping_timeout=WAIT
    )
    await asyncio.wait_for(client.connect(), WAIT)
    try:
        pongs = await handlers.wait_for("pong", count=3)
        assert all(isinstance(p, msgs.Pong) for p in pongs)
        assert client.is_connected
    finally:
        await client.close()


async def test_low_level_mode_refuses_the_helpers(regtest_node: RegtestNode) -> None:
    client = BitcoinClient(regtest_node.p2p_address, "bsv-regtest", mode=Mode.LOW_LEVEL)
    await asyncio.wait_for(client.connect(), WAIT)
    try:
        with pytest.raises(ModeError):
            await client.get_headers([regtest_node.network.genesis_hash])
        with pytest.raises(ModeError):
            await client.get_block(bytes(32))
        with pytest.raises(ModeError):
            await client.broadcast_transaction(b"\x01" * 60)
        with pytest.raises(ModeError):
            _ = client.inv_queue
        with pytest.raises(ModeError):
            _ = client.block_queue
        with pytest.raises(ModeError):
            _ = client.tx_queue
        # the low-level path works: send getheaders, read the answer in a handler
        await client.send_message(
            msgs.GetHeaders(msgs.PROTOCOL_VERSION, (regtest_node.network.genesis_hash,))
        )
    finally:
        await client.close()


async def test_refused_connection_is_a_dial_error(tmp_path) -> None:
    peers = PeerStore(tmp_path, "bsv-regtest")
    address = f"127.0.0.1:{free_port()}"
    client = BitcoinClient(address, "bsv-regtest", peer_store=peers)
    with pytest.raises(DialError):
        await asyncio.wait_for(client.connect(), WAIT)
    record = peers.get(address)
    assert record is not None and record.failures == 1
    with pytest.raises(DialError):
        await client.wait_closed()


async def test_through_a_socks5_proxy(regtest_node: RegtestNode, microsocks) -> None:  # type: ignore[no-untyped-def]
    proxy = microsocks(username="peerpool", password="secret")
    client = BitcoinClient(
        regtest_node.p2p_address, "bsv-regtest", proxy=proxy.proxy(), ping_interval=0
    )
    await asyncio.wait_for(client.connect(), WAIT)
    try:
        answer = await asyncio.wait_for(
            client.get_headers([regtest_node.network.genesis_hash]), WAIT
        )
        assert answer.count == min(regtest_node.block_count(), msgs.MAX_HEADERS)
    finally:
        await client.close()
    refused = BitcoinClient(
        regtest_node.p2p_address, "bsv-regtest", proxy=proxy.proxy(password="wrong")
    )
    with pytest.raises(SocksAuthError):
        await asyncio.wait_for(refused.connect(), WAIT)
