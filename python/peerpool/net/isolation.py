"""Stream isolation: separate Tor circuits per traffic category.

Tor's SocksPort isolates by SOCKS credentials (``IsolateSOCKSAuth``, on by
default): streams that authenticate with different username/password pairs
never share a circuit. Giving every category (directory, peer, any other the
caller names) its own pair keeps, for example, a directory server from
linking our directory traffic with our direct peer connections by timing on
a shared circuit.

Both the username and the password must be non-empty: python-socks only
offers username/password authentication when both are set, so an empty
password would silently turn isolation off. :class:`SocksAuth` refuses that.
"""

from __future__ import annotations

import itertools
import re
import secrets
from dataclasses import dataclass

from peerpool.errors import InputError

DIRECTORY = "directory"
"""The isolation category of connections to JoinMarket directories."""
PEER = "peer"
"""The isolation category of direct connections to peers (makers, Bitcoin peers)."""

# RFC 1929: username and password are each 1-255 bytes; python-socks encodes ASCII.
MAX_CREDENTIAL_LENGTH = 255
_CATEGORY_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class SocksAuth:
    """A SOCKS5 username/password pair (RFC 1929), both non-empty printable ASCII."""

    username: str
    password: str

    def __post_init__(self) -> None:
        for field, value in (("username", self.username), ("password", self.password)):
            if not isinstance(value, str) or not value:
                raise InputError(
                    f"SOCKS {field} must be a non-empty string "
                    "(python-socks skips authentication, and Tor isolation, when either is empty)"
                )
            if not value.isascii() or not value.isprintable():
                raise InputError(f"SOCKS {field} must be printable ASCII")
            if len(value) > MAX_CREDENTIAL_LENGTH:
                raise InputError(f"SOCKS {field} longer than {MAX_CREDENTIAL_LENGTH} bytes")

    def __repr__(self) -> str:  # keep passwords out of logs
        return f"SocksAuth(username={self.username!r}, password='***')"


class StreamIsolation:
    """Hands out SOCKS credentials per category so Tor keeps categories apart.

    One instance per identity (wallet, node): its random ``token`` is part of
    every password, so two instances sharing a Tor process are isolated from
    each other too. With ``fresh_per_connection`` every call returns a new
    pair, giving each connection a circuit of its own.
    """

    def __init__(self, *, fresh_per_connection: bool = False, token: str | None = None) -> None:
        self.fresh_per_connection = fresh_per_connection
        self._token = token if token is not None else secrets.token_hex(16)
        if not self._token or not _CATEGORY_RE.fullmatch(self._token):
            raise InputError("isolation token must be 1-64 characters of [A-Za-z0-9_.-]")
        self._counter = itertools.count(1)

    def credentials(self, category: str) -> SocksAuth:
        """The credentials for one connection of ``category``."""
        if not isinstance(category, str) or not _CATEGORY_RE.fullmatch(category):
            raise InputError(
                f"isolation category {category!r} must be 1-64 characters of [A-Za-z0-9_.-]"
            )
        password = self._token
        if self.fresh_per_connection:
            password = f"{self._token}-{next(self._counter)}"
        return SocksAuth(username=f"peerpool-{category}", password=password)

    def __repr__(self) -> str:
        return f"StreamIsolation(fresh_per_connection={self.fresh_per_connection})"
