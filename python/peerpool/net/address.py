"""Server addresses: parsing with clear errors and the canonical node id.

Accepted forms (surrounding whitespace is ignored):

- ``host:port`` and ``host`` (the latter only when a ``default_port`` is given),
  where host is a DNS name (lower-cased), an IPv4 address or a v3 onion name;
- ``[ipv6]:port`` and ``[ipv6]``; a bare IPv6 literal is refused because
  ``fe80::1:8333`` cannot be told apart from an address without a port.

The canonical node id is ``"host:port"`` (``"[ipv6]:port"``), so two spellings
of one server (``Example.COM:80``, ``example.com:80``) share one pool slot.
joinmarket-ng accepts ``h:1:2``, port 99999 and ``""`` without complaint; each
of those is an :class:`~peerpool.errors.AddressError` here.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import ipaddress
import re
from dataclasses import dataclass

from peerpool.errors import AddressError

# RFC 1035 limits a name to 253 characters; with brackets, a port and a zone id
# an address is never longer than this. Checked first, so a huge string costs nothing.
MAX_ADDRESS_LENGTH = 300

# rend-spec-v3 "Encoding onion addresses": base32(PUBKEY | CHECKSUM | VERSION)
ONION_V3_LENGTH = 56
ONION_V3_VERSION = 3
_ONION_CHECKSUM_PREFIX = b".onion checksum"

_PORT_RE = re.compile(r"[0-9]{1,5}")
# RFC 1123 labels; "_" is tolerated because container and service names use it
_LABEL_RE = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_BASE32_RE = re.compile(r"[a-z2-7]+")


class AddressKind(enum.Enum):
    """What the host part of an :class:`Address` is: a DNS name, an IPv4 or IPv6
    literal, or a Tor v3 ``.onion`` name (which only a SOCKS proxy can reach).
    """

    HOSTNAME = "hostname"
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    ONION = "onion"


@dataclass(frozen=True)
class Address:
    """A parsed, canonical server address. Build it with :func:`parse_address`."""

    host: str
    port: int
    kind: AddressKind

    @property
    def node_id(self) -> str:
        """The canonical ``"host:port"`` key of this server (IPv6 in brackets)."""
        if self.kind is AddressKind.IPV6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    @property
    def is_onion(self) -> bool:
        """True for a ``.onion`` host (reachable only through a SOCKS proxy such as Tor)."""
        return self.kind is AddressKind.ONION

    def __str__(self) -> str:
        return self.node_id


def parse_address(text: str | Address, default_port: int | None = None) -> Address:
    """Parse ``text`` into an :class:`Address`; raise AddressError saying what is wrong."""
    if isinstance(text, Address):
        return text
    if not isinstance(text, str):
        raise AddressError(f"address must be a string, not {type(text).__name__}")
    if default_port is not None:
        _check_port_range(default_port, "default port")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise AddressError(f"address longer than {MAX_ADDRESS_LENGTH} characters")
    stripped = text.strip()
    if not stripped:
        raise AddressError("empty address")
    host_text, port = _split_host_port(stripped, default_port)
    return _classify_host(host_text, port, bracketed=stripped.startswith("["))


def node_id(text: str | Address, default_port: int | None = None) -> str:
    """The canonical node id of an address string (parsing it on the way)."""
    return parse_address(text, default_port).node_id


def onion_v3_from_pubkey(pubkey: bytes) -> str:
    """The v3 onion name (``<56 chars>.onion``) of a 32-byte ed25519 public key."""
    if len(pubkey) != 32:
        raise AddressError(f"an ed25519 public key has 32 bytes, not {len(pubkey)}")
    version = bytes([ONION_V3_VERSION])
    raw = pubkey + _onion_checksum(pubkey, version) + version
    return base64.b32encode(raw).decode("ascii").lower() + ".onion"


def _onion_checksum(pubkey: bytes, version: bytes) -> bytes:
    return hashlib.sha3_256(_ONION_CHECKSUM_PREFIX + pubkey + version).digest()[:2]


def _split_host_port(text: str, default_port: int | None) -> tuple[str, int]:
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise AddressError(f"{text!r}: '[' without a closing ']'")
        host, rest = text[1:close], text[close + 1 :]
        if rest == "":
            return host, _need_default(text, default_port)
        if not rest.startswith(":"):
            raise AddressError(f"{text!r}: expected ':port' after ']'")
        return host, _parse_port(rest[1:], text)
    if text.count(":") > 1:
        raise AddressError(f"{text!r}: too many ':' (write IPv6 addresses in brackets: [::1]:8333)")
    host, sep, port_text = text.partition(":")
    if not sep:
        return host, _need_default(text, default_port)
    return host, _parse_port(port_text, text)


def _need_default(text: str, default_port: int | None) -> int:
    if default_port is None:
        raise AddressError(f"{text!r}: missing port (expected host:port)")
    return default_port


def _parse_port(port_text: str, text: str) -> int:
    if not _PORT_RE.fullmatch(port_text):
        raise AddressError(f"{text!r}: port {port_text!r} is not a number")
    port = int(port_text)
    _check_port_range(port, f"{text!r}: port")
    return port


def _check_port_range(port: int, what: str) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise AddressError(f"{what} {port!r} is outside 1-65535")


def _classify_host(host: str, port: int, *, bracketed: bool) -> Address:
    if not host:
        raise AddressError(f"empty host in address with port {port}")
    if bracketed:
        try:
            ip6 = ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"[{host}]: not an IPv6 address") from None
        return Address(ip6.compressed, port, AddressKind.IPV6)
    host = host.lower()
    if host.endswith(".onion"):
        return Address(_check_onion(host), port, AddressKind.ONION)
    if all(part.isdigit() for part in host.split(".") if part) and host[0].isdigit():
        try:
            return Address(str(ipaddress.IPv4Address(host)), port, AddressKind.IPV4)
        except ValueError:
            raise AddressError(f"{host!r}: not a valid IPv4 address") from None
    return Address(_check_hostname(host), port, AddressKind.HOSTNAME)


def _check_hostname(host: str) -> str:
    if len(host) > 253:
        raise AddressError(f"host name longer than 253 characters: {host[:40]}...")
    for label in host.split("."):
        if not _LABEL_RE.fullmatch(label):
            raise AddressError(
                f"{host!r}: bad label {label!r} (letters, digits, '-', '_'; 1-63 characters)"
            )
    return host


def _check_onion(host: str) -> str:
    name = host[: -len(".onion")]
    if "." in name:
        raise AddressError(f"{host!r}: subdomains of an onion name are not supported")
    if len(name) == 16 and _BASE32_RE.fullmatch(name):
        raise AddressError(f"{host!r}: v2 onion names are obsolete (Tor removed them)")
    if len(name) != ONION_V3_LENGTH or not _BASE32_RE.fullmatch(name):
        raise AddressError(
            f"{host!r}: a v3 onion name is {ONION_V3_LENGTH} base32 characters (a-z, 2-7)"
        )
    raw = base64.b32decode(name.upper())
    pubkey, checksum, version = raw[:32], raw[32:34], raw[34:35]
    if version[0] != ONION_V3_VERSION:
        raise AddressError(f"{host!r}: onion version byte is {version[0]}, expected 3")
    if checksum != _onion_checksum(pubkey, version):
        raise AddressError(f"{host!r}: onion checksum does not match (a typo?)")
    return host
