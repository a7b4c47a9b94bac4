"""Proxy settings for :func:`peerpool.net.dial` (Tor's SocksPort or any SOCKS/HTTP proxy)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from peerpool.errors import InputError
from peerpool.net.address import AddressKind, parse_address
from peerpool.net.isolation import SocksAuth

# Tor's default SocksPort (tor(1), SocksPort)
TOR_DEFAULT_SOCKS_PORT = 9050


class ProxyKind(enum.Enum):
    """The proxy protocol: SOCKS5 (Tor's, the default), SOCKS4 or HTTP CONNECT."""

    SOCKS5 = "socks5"
    SOCKS4 = "socks4"
    HTTP = "http"


@dataclass(frozen=True)
class ProxyConfig:
    """Where the proxy listens and how to use it.

    ``username``/``password`` are the proxy's own credentials (both or
    neither); a per-connection isolation pair passed to ``dial`` replaces them.
    By default every connection goes through the proxy, so a Tor user never
    leaks their address by dialing a clearnet host directly; ``onion_only``
    sends only ``.onion`` names through it and dials other hosts directly.
    """

    host: str = "127.0.0.1"
    port: int = TOR_DEFAULT_SOCKS_PORT
    username: str | None = None
    password: str | None = None
    kind: ProxyKind = ProxyKind.SOCKS5
    onion_only: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ProxyKind):
            try:
                object.__setattr__(self, "kind", ProxyKind(str(self.kind).lower()))
            except ValueError:
                kinds = ", ".join(k.value for k in ProxyKind)
                raise InputError(f"proxy kind {self.kind!r} is not one of {kinds}") from None
        # validates host and port with the same rules as any server address
        host = f"[{self.host}]" if ":" in str(self.host) else str(self.host)
        where = parse_address(f"{host}:{self.port}")
        if where.kind is AddressKind.ONION:
            raise InputError("the proxy itself cannot be an onion service")
        object.__setattr__(self, "host", where.host)
        if (self.username is None) != (self.password is None):
            raise InputError("proxy username and password go together: give both or neither")
        _ = self.auth  # validate them now rather than at the first dial

    @property
    def auth(self) -> SocksAuth | None:
        """The proxy's own credentials, validated (non-empty, ASCII, <= 255 bytes)."""
        if self.username is None or self.password is None:
            return None
        return SocksAuth(self.username, self.password)

    @property
    def endpoint(self) -> str:
        """``host:port`` of the proxy (an IPv6 host in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def __repr__(self) -> str:  # keep passwords out of logs
        auth = ", auth=***" if self.username is not None else ""
        return (
            f"ProxyConfig({self.kind.value}://{self.endpoint}{auth}, onion_only={self.onion_only})"
        )
