"""``dial``: one call that opens a stream to a server, directly or through a proxy.

Plain TCP for ordinary hosts; ``.onion`` names (and everything, unless the
proxy is ``onion_only``) through a SOCKS5 proxy with python-socks. The proxy
resolves host names (``rdns=True``): a name is never looked up locally when a
proxy is in use, so neither an onion name nor a clearnet name we reach through
Tor ever reaches the local DNS resolver. Every failure is a
:class:`~peerpool.errors.DialError` (timeouts: ``DialTimeoutError``; proxy
failures: ``SocksError`` with the reply code and a readable reason; Tor's
onion-service failures: ``TorOnionError``).
"""

from __future__ import annotations

import asyncio
import math
import socket

from python_socks import ProxyType
from python_socks.async_.asyncio import Proxy

from peerpool.errors import DialError, DialTimeoutError, InputError
from peerpool.net.address import Address, parse_address
from peerpool.net.isolation import SocksAuth
from peerpool.net.proxy import ProxyConfig, ProxyKind
from peerpool.net.socks_errors import translate

# Onion connections over a fresh Tor need a descriptor fetch plus introduction
# and rendezvous circuits; 30 s leaves room for that on a loaded machine.
DEFAULT_DIAL_TIMEOUT = 30.0
"""Seconds ``dial`` waits for a connection (through the proxy, when there is one)."""
# The StreamReader buffer limit (readline/readuntil raise beyond it). 64 KiB
# is asyncio's own default; protocols with longer lines pass their maximum.
DEFAULT_READ_LIMIT = 1 << 16
"""The read buffer limit of the streams ``dial`` returns (64 KiB, asyncio's default)."""

_PROXY_TYPES = {
    ProxyKind.SOCKS5: ProxyType.SOCKS5,
    ProxyKind.SOCKS4: ProxyType.SOCKS4,
    ProxyKind.HTTP: ProxyType.HTTP,
}

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def dial(
    address: str | Address,
    *,
    proxy: ProxyConfig | None = None,
    isolation: SocksAuth | None = None,
    timeout: float = DEFAULT_DIAL_TIMEOUT,
    limit: int = DEFAULT_READ_LIMIT,
    default_port: int | None = None,
) -> Streams:
    """Open a stream to ``address`` (``"host:port"`` or an :class:`Address`).

    ``isolation`` (from :meth:`StreamIsolation.credentials`) replaces the
    proxy's own credentials for this connection so Tor puts it on a circuit
    of its category; it has no effect on direct connections. ``timeout``
    bounds the whole dial: TCP connect plus the proxy handshake.
    """
    target = parse_address(address, default_port)
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise InputError(f"dial timeout must be a positive number of seconds, not {timeout!r}")
    if not isinstance(limit, int) or limit < 1024:
        raise InputError(f"read limit must be an int >= 1024, not {limit!r}")
    use_proxy = proxy is not None and (target.is_onion or not proxy.onion_only)
    if target.is_onion and proxy is None:
        raise DialError(
            f"{target}: an onion service needs a Tor SOCKS proxy (refusing to resolve it locally)"
        )
    if use_proxy and proxy is not None:
        auth = isolation or proxy.auth
        if isolation is not None and proxy.kind is ProxyKind.SOCKS4:
            raise InputError("stream isolation needs SOCKS5 (SOCKS4 has no password)")
        opener = _open_via_proxy(target, proxy, auth, timeout, limit)
    else:
        opener = _open_direct(target, limit)
    try:
        return await asyncio.wait_for(opener, timeout)
    except asyncio.TimeoutError:
        via = f" via proxy {proxy.endpoint}" if use_proxy and proxy is not None else ""
        raise DialTimeoutError(f"{target}{via}: no connection within {timeout:g} s") from None


async def _open_direct(target: Address, limit: int) -> Streams:
    try:
        return await asyncio.open_connection(target.host, target.port, limit=limit)
    except socket.gaierror as exc:
        raise DialError(f"{target}: cannot resolve host ({exc.strerror})") from exc
    except ConnectionRefusedError as exc:
        raise DialError(f"{target}: connection refused") from exc
    except OSError as exc:
        raise DialError(f"{target}: {exc.strerror or exc}") from exc


async def _open_via_proxy(
    target: Address, proxy: ProxyConfig, auth: SocksAuth | None, timeout: float, limit: int
) -> Streams:
    client = Proxy(
        _PROXY_TYPES[proxy.kind],
        proxy.host,
        proxy.port,
        username=auth.username if auth else None,
        password=auth.password if auth else None,
        rdns=True,  # the proxy resolves names; never our local resolver
        loop=asyncio.get_running_loop(),
    )
    try:
        # python-socks' own timeout is a second guard; ours (wait_for) is the one that counts
        sock = await client.connect(target.host, target.port, timeout=timeout + 1)
    except Exception as exc:  # ProxyError, ProxyConnectionError, ProxyTimeoutError
        http = proxy.kind is ProxyKind.HTTP
        raise translate(exc, target.node_id, proxy.endpoint, http=http) from exc
    try:
        return await asyncio.open_connection(sock=sock, limit=limit)
    except BaseException:
        sock.close()  # cancelled (our timeout) or failed between handshake and stream
        raise
