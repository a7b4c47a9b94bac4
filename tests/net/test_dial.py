"""dial() against real sockets on 127.0.0.1: direct TCP, errors, timeouts, limits, proxy routing."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import pytest

from peerpool.errors import DialError, DialTimeoutError, InputError, SocksError
from peerpool.net import ProxyConfig, ProxyKind, StreamIsolation, dial
from tests.net.ports import closed_port
from tests.net.servers import tcp_server

WAIT = 20.0
ONION = "luwjiq5jo45aopao36wy54ubwiopwqozjneslnfl7f2j2tfr6j5vd6id.onion:80"


@contextlib.contextmanager
def saturated_listener() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so connects hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(16):
            filler = socket.socket()
            filler.settimeout(0.5)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break  # the queue is full now
        else:
            pytest.fail("could not saturate the accept queue")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"hello\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), WAIT)
    writer.close()
    return line


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_direct_tcp_round_trip(host: str) -> None:
    async with tcp_server() as port:
        reader, writer = await dial(f"{host}:{port}", timeout=WAIT)
        assert await round_trip(reader, writer) == b"hello\n"


async def test_direct_ipv6_round_trip() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")  # an environment fact, not a failure
    async with tcp_server(host="::1") as port:
        reader, writer = await dial(f"[::1]:{port}", timeout=WAIT)
        assert await round_trip(reader, writer) == b"hello\n"


async def test_refused_is_a_dial_error_and_a_connection_error() -> None:
    port = closed_port()
    with pytest.raises(DialError, match=f"127.0.0.1:{port}: connection refused") as info:
        await dial(f"127.0.0.1:{port}", timeout=WAIT)
    assert isinstance(info.value, ConnectionError)


async def test_connect_that_hangs_times_out_as_dial_timeout() -> None:
    with saturated_listener() as port:
        with pytest.raises(DialTimeoutError, match=r"no connection within 0\.3 s") as info:
            await asyncio.wait_for(dial(f"127.0.0.1:{port}", timeout=0.3), WAIT)
        assert isinstance(info.value, TimeoutError)


async def test_a_proxy_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass  # accepts TCP, never speaks SOCKS

    async with tcp_server(silent) as proxy_port, tcp_server() as target:
        proxy = ProxyConfig("127.0.0.1", proxy_port)
        with pytest.raises(DialTimeoutError, match=f"via proxy 127.0.0.1:{proxy_port}"):
            await asyncio.wait_for(dial(f"127.0.0.1:{target}", proxy=proxy, timeout=0.3), WAIT)


async def test_unreachable_proxy_is_a_socks_error() -> None:
    proxy = ProxyConfig("127.0.0.1", closed_port())
    with pytest.raises(SocksError, match="cannot reach the proxy") as info:
        await dial("example.com:80", proxy=proxy, timeout=WAIT)
    assert info.value.code is None


async def test_onion_without_a_proxy_is_refused_before_any_lookup() -> None:
    with pytest.raises(DialError, match="needs a Tor SOCKS proxy"):
        await dial(ONION, timeout=WAIT)


async def test_onion_only_proxy_leaves_clearnet_direct() -> None:
    dead_proxy = ProxyConfig("127.0.0.1", closed_port(), onion_only=True)
    async with tcp_server() as port:
        reader, writer = await dial(f"127.0.0.1:{port}", proxy=dead_proxy, timeout=WAIT)
        assert await round_trip(reader, writer) == b"hello\n"
    # ...while an onion still goes to the (dead) proxy, never to a local resolver
    with pytest.raises(SocksError, match="cannot reach the proxy"):
        await dial(ONION, proxy=dead_proxy, timeout=WAIT)


async def test_by_default_a_proxy_carries_clearnet_too() -> None:
    dead_proxy = ProxyConfig("127.0.0.1", closed_port())
    async with tcp_server() as port:
        with pytest.raises(SocksError, match="cannot reach the proxy"):
            await dial(f"127.0.0.1:{port}", proxy=dead_proxy, timeout=WAIT)


async def test_read_limit_bounds_lines() -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * 5000)  # no newline
        await writer.drain()
        await reader.read(1)

    async with tcp_server(flood) as port:
        reader, writer = await dial(f"127.0.0.1:{port}", timeout=WAIT, limit=1024)
        with pytest.raises(ValueError):  # asyncio's LimitOverrunError, surfaced by readline
            await asyncio.wait_for(reader.readline(), WAIT)
        writer.close()


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"timeout": float("inf")}, {"limit": 10}])
async def test_bad_arguments_are_input_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        await dial("127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


async def test_isolation_needs_socks5() -> None:
    proxy = ProxyConfig("127.0.0.1", 1080, kind=ProxyKind.SOCKS4)
    with pytest.raises(InputError, match="SOCKS5"):
        await dial("example.com:80", proxy=proxy, isolation=StreamIsolation().credentials("peer"))
