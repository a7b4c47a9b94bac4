"""dial() through a real SOCKS5 proxy (Debian's microsocks), with and without auth."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.errors import SocksAuthError, SocksError
from peerpool.net import DIRECTORY, PEER, StreamIsolation, dial
from peerpool.pool import ClientPool
from tests.integration.conftest import StartMicrosocks
from tests.net.ports import closed_port
from tests.net.servers import tcp_server
from tests.pool.line_client import LineClient, LineServer

WAIT = 20.0


async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"through the proxy\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), WAIT)
    writer.close()
    return line


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_no_auth_proxy_round_trip(microsocks: StartMicrosocks, host: str) -> None:
    proxy = microsocks().proxy()
    async with tcp_server() as port:
        streams = await asyncio.wait_for(dial(f"{host}:{port}", proxy=proxy), WAIT)
        assert await echo_once(*streams) == b"through the proxy\n"


async def test_auth_proxy_round_trip(microsocks: StartMicrosocks) -> None:
    proxy = microsocks("alice", "s3cret").proxy()
    async with tcp_server() as port:
        streams = await asyncio.wait_for(dial(f"127.0.0.1:{port}", proxy=proxy), WAIT)
        assert await echo_once(*streams) == b"through the proxy\n"


async def test_wrong_password_is_a_socks_auth_error(microsocks: StartMicrosocks) -> None:
    server = microsocks("alice", "s3cret")
    async with tcp_server() as port:
        with pytest.raises(SocksAuthError) as info:
            await asyncio.wait_for(
                dial(f"127.0.0.1:{port}", proxy=server.proxy(password="wrong")), WAIT
            )
    assert f"via proxy 127.0.0.1:{server.port}" in str(info.value)
    assert "credentials" in info.value.reason


async def test_no_credentials_for_an_auth_proxy_is_a_socks_auth_error(
    microsocks: StartMicrosocks,
) -> None:
    server = microsocks("alice", "s3cret")
    async with tcp_server() as port:
        with pytest.raises(SocksAuthError):
            await asyncio.wait_for(
                dial(f"127.0.0.1:{port}", proxy=server.proxy(username=None, password=None)), WAIT
            )


async def test_isolation_credentials_are_the_ones_sent(microsocks: StartMicrosocks) -> None:
    # a proxy that only knows the directory category's pair: proves dial sends the
    # isolation credentials (not the proxy's own), and that categories differ
    isolation = StreamIsolation(token="t0ken")
    directory = isolation.credentials(DIRECTORY)
    server = microsocks(directory.username, directory.password)
    proxy = server.proxy(username="someone", password="else")
    async with tcp_server() as port:
        streams = await asyncio.wait_for(
            dial(f"127.0.0.1:{port}", proxy=proxy, isolation=directory), WAIT
        )
        assert await echo_once(*streams) == b"through the proxy\n"
        with pytest.raises(SocksAuthError):
            await asyncio.wait_for(
                dial(f"127.0.0.1:{port}", proxy=proxy, isolation=isolation.credentials(PEER)),
                WAIT,
            )


async def test_refused_target_is_reported_with_the_proxy_reply_code(
    microsocks: StartMicrosocks,
) -> None:
    proxy = microsocks().proxy()
    target = f"127.0.0.1:{closed_port()}"
    with pytest.raises(SocksError) as info:
        await asyncio.wait_for(dial(target, proxy=proxy), WAIT)
    assert info.value.code == 0x05
    assert info.value.reason == "connection refused by the destination"
    assert target in str(info.value)


async def test_a_pool_of_clients_through_the_proxy(microsocks: StartMicrosocks) -> None:
    proxy = microsocks("bob", "pw").proxy()
    servers = [await LineServer().start() for _ in range(3)]
    try:
        pool = ClientPool(
            [s.address for s in servers],
            client_factory=lambda address: LineClient(address, proxy=proxy),
        )
        async with pool:
            outcome = await asyncio.wait_for(pool.connect_all_with_retry(timeout=WAIT), WAIT)
            assert sorted(outcome.connected) == sorted(s.address for s in servers)
            replies = [await asyncio.wait_for(c.request("hi"), WAIT) for c in pool.clients.values()]
            assert replies == ["hi"] * 3
    finally:
        for server in servers:
            await server.kill()
