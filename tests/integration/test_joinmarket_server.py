"""Our DirectoryServer over real sockets on 127.0.0.1, and the `peerpool directory` command."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys

import pytest

from peerpool.joinmarket import DirectoryServer
from peerpool.joinmarket.protocol import (
    HandshakeDone,
    NickAuthMode,
    PeersUpdated,
    PrivateMessage,
    PublicMessage,
)
from peerpool.joinmarket.wire import encode_frame
from tests.joinmarket.helpers import SocketPeer, identity


@pytest.fixture
async def server():
    async with DirectoryServer("127.0.0.1", 0, "regtest") as srv:
        yield srv


async def test_relay_over_sockets(server: DirectoryServer) -> None:
    peers = [await SocketPeer(n).connect(server.port) for n in range(1, 21)]
    peers[0].proto.send_public("orderbook")
    peers[1].proto.send_private(identity(3).nick, "fill", "0 100000")
    await peers[0].flush()
    await peers[1].flush()
    for p in peers[1:]:
        await p.until(lambda p=p: PublicMessage(identity(1).nick, "orderbook") in p.events)
    await peers[2].until(lambda: any(isinstance(e, PrivateMessage) for e in peers[2].events))
    (msg,) = [e for e in peers[2].events if isinstance(e, PrivateMessage)]
    assert (msg.from_nick, msg.command, msg.data) == (identity(2).nick, "fill", "0 100000")
    peers[5].proto.request_peerlist()
    await peers[5].flush()
    await peers[5].until(lambda: any(isinstance(e, PeersUpdated) for e in peers[5].events))
    nicks = {e.nick for u in peers[5].events if isinstance(u, PeersUpdated) for e in u.entries}
    assert nicks == {identity(n).nick for n in range(1, 21)}
    assert server.stats.public_deliveries == 19 and server.stats.private_relayed == 1
    for p in peers:
        await p.close()


async def test_wrong_network_is_refused_and_closed(server: DirectoryServer) -> None:
    from peerpool.errors import HandshakeRejectedError

    peer = SocketPeer(1, network="mainnet")
    with pytest.raises(HandshakeRejectedError, match=r"refused.*wrong network"):
        await peer.connect(server.port)
    data = await asyncio.wait_for(peer.reader.read(), 10)
    assert data == b""  # the server closed after refusing
    await peer.close()


@pytest.mark.parametrize(
    "garbage",
    [b"{oops\r\n", b"x" * 100_000, b'{"type": 685, "line": 3}\r\n', encode_frame(791, "")],
)
async def test_bad_input_cuts_only_that_connection(server: DirectoryServer, garbage) -> None:
    good = await SocketPeer(1).connect(server.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(garbage)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    good.proto.send_public("orderbook")
    await good.flush()
    other = await SocketPeer(2).connect(server.port)  # the server still serves
    good.proto.send_public("orderbook")
    await good.flush()
    await other.until(lambda: any(isinstance(e, PublicMessage) for e in other.events))
    await good.close()
    await other.close()


async def test_departure_is_announced(server: DirectoryServer) -> None:
    a = await SocketPeer(1).connect(server.port)
    b = await SocketPeer(2).connect(server.port)
    await a.close()

    def left() -> bool:
        return any(isinstance(u, PeersUpdated) and u.entries[0].disconnected for u in b.events)

    await b.until(left)
    await b.close()


async def test_many_clients_at_once_none_dropped(server: DirectoryServer) -> None:
    peers = [SocketPeer(n) for n in range(1, 201)]
    await asyncio.wait_for(asyncio.gather(*(p.connect(server.port) for p in peers)), 60)
    assert server.stats.accepted == 200
    await asyncio.gather(*(p.close() for p in peers))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_directory_command_with_nick_auth() -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "peerpool.cli",
        "directory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--network",
        "regtest",
        "--directory-id",
        f"127.0.0.1:{port}",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert f"127.0.0.1:{port}".encode() in banner and b"nick auth" in banner
        peer = SocketPeer(1, nick_auth=NickAuthMode.REQUIRE, directory_id=f"127.0.0.1:{port}")
        await peer.connect(port)
        done = next(e for e in peer.events if isinstance(e, HandshakeDone))
        assert done.nick_verified and peer.proto.nick_verified
        await peer.close()
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(proc.wait(), 10)


async def test_directory_command_rejects_a_bad_directory_id() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "peerpool.cli",
        "directory",
        "--port",
        "0",
        "--network",
        "regtest",
        "--directory-id",
        "NOT VALID",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"invalid directory-id" in err
