"""Peer addresses: the 26-byte network address, ``addr`` and BIP155 ``addrv2``."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar, Final, NamedTuple

from peerpool.bitcoin.messages.wire import (
    COMPACT_SIZE_MAX,
    Message,
    PayloadReader,
    check_uint,
    put_compact_size,
    put_var_bytes,
)
from peerpool.errors import InputError

# MAX_ADDR_TO_SEND in Bitcoin Core (src/net.h) and the "oversized-addr" check of
# Bitcoin SV's ProcessAddrMessage (src/net/net_processing.cpp): at most 1,000
# addresses per addr or addrv2 message.
MAX_ADDR_ENTRIES: Final = 1_000

# BIP155: an address field is at most 512 bytes; the known networks have fixed sizes.
MAX_ADDRV2_ADDRESS_SIZE: Final = 512
ADDRV2_NETWORK_SIZES: Final = {1: 4, 2: 16, 3: 10, 4: 32, 5: 32, 6: 16}  # IPv4 .. CJDNS

NETWORK_ADDRESS_SIZE: Final = 26  # services 8, IPv6 (or IPv4-mapped) 16, port 2
# the port is big-endian, unlike every other integer: it is kept as 2 raw bytes
# in these layouts and converted separately (struct cannot mix byte orders)
_NETWORK_ADDRESS: Final = struct.Struct("<Q16s2s")
_TIMED_ADDRESS: Final = struct.Struct("<IQ16s2s")

_IPV4_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"


def ip_to_bytes(host: str) -> bytes:
    """An IPv4 or IPv6 literal as the 16 bytes of the wire (IPv4 is IPv4-mapped)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise InputError(f"not an IP address: {host!r}") from exc
    if isinstance(address, ipaddress.IPv4Address):
        return _IPV4_MAPPED_PREFIX + address.packed
    return address.packed


def bytes_to_ip(ip: bytes) -> str:
    """The 16 wire bytes as text: dotted quad for IPv4-mapped addresses."""
    if ip.startswith(_IPV4_MAPPED_PREFIX):
        return str(ipaddress.IPv4Address(ip[12:]))
    return str(ipaddress.IPv6Address(ip))


def _check_address_fields(services: int, ip: bytes, port: int) -> None:
    check_uint(services, 64, "services")
    if len(ip) != 16:
        raise InputError(f"ip must be 16 bytes, not {len(ip)}")
    check_uint(port, 16, "port")


class NetworkAddress(NamedTuple):
    """The address form of ``version``: no timestamp."""

    services: int
    ip: bytes
    port: int

    @classmethod
    def from_host(cls, host: str, port: int, services: int = 0) -> NetworkAddress:
        return cls(services, ip_to_bytes(host), port)

    @property
    def host(self) -> str:
        return bytes_to_ip(self.ip)

    def encode(self) -> bytes:
        _check_address_fields(self.services, self.ip, self.port)
        return _NETWORK_ADDRESS.pack(self.services, self.ip, self.port.to_bytes(2, "big"))

    @classmethod
    def read(cls, reader: PayloadReader, what: str) -> NetworkAddress:
        services, ip, port = _NETWORK_ADDRESS.unpack(reader.take(NETWORK_ADDRESS_SIZE, what))
        return cls(services, ip, int.from_bytes(port, "big"))


class TimedAddress(NamedTuple):
    """An ``addr`` entry: when the peer was last seen, then a network address."""

    time: int
    services: int
    ip: bytes
    port: int

    @property
    def host(self) -> str:
        return bytes_to_ip(self.ip)


@dataclass(frozen=True)
class Addr(Message):
    COMMAND: ClassVar[str] = "addr"
    addresses: tuple[TimedAddress, ...]

    def __post_init__(self) -> None:
        for entry in self.addresses:
            check_uint(entry.time, 32, "time")
            _check_address_fields(entry.services, entry.ip, entry.port)

    def encode(self) -> bytes:
        parts = [put_compact_size(len(self.addresses))]
        parts.extend(
            _TIMED_ADDRESS.pack(time, services, ip, port.to_bytes(2, "big"))
            for time, services, ip, port in self.addresses
        )
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Addr:
        reader = PayloadReader(cls.COMMAND, payload)
        count = reader.count(MAX_ADDR_ENTRIES, _TIMED_ADDRESS.size, "addresses")
        body = reader.take(count * _TIMED_ADDRESS.size, "addresses")
        reader.end()
        return cls(
            tuple(
                TimedAddress(time, services, ip, int.from_bytes(port, "big"))
                for time, services, ip, port in _TIMED_ADDRESS.iter_unpack(body)
            )
        )


class AddrV2Entry(NamedTuple):
    """A BIP155 entry: services as a CompactSize and an address tagged with its network."""

    time: int
    services: int
    network_id: int
    address: bytes
    port: int


# time 4, services >= 1, network id 1, address length >= 1, port 2
_MIN_ADDRV2_ENTRY_SIZE: Final = 9


def _check_addrv2_address(network_id: int, address: bytes) -> str | None:
    """Why this address is invalid for its network, or None if it is fine."""
    if len(address) > MAX_ADDRV2_ADDRESS_SIZE:
        return f"address of {len(address)} bytes exceeds BIP155's {MAX_ADDRV2_ADDRESS_SIZE}"
    expected = ADDRV2_NETWORK_SIZES.get(network_id)
    if expected is not None and len(address) != expected:
        return f"network {network_id} needs a {expected}-byte address, not {len(address)}"
    return None


@dataclass(frozen=True)
class AddrV2(Message):
    """BIP155 ``addrv2``. Unknown network ids are kept (BIP155 says to ignore, not reject, them)."""

    COMMAND: ClassVar[str] = "addrv2"
    addresses: tuple[AddrV2Entry, ...]

    def __post_init__(self) -> None:
        for entry in self.addresses:
            check_uint(entry.time, 32, "time")
            check_uint(entry.services, 64, "services")
            check_uint(entry.network_id, 8, "network id")
            check_uint(entry.port, 16, "port")
            if problem := _check_addrv2_address(entry.network_id, entry.address):
                raise InputError(problem)

    def encode(self) -> bytes:
        parts = [put_compact_size(len(self.addresses))]
        for entry in self.addresses:
            parts.append(struct.pack("<I", entry.time))
            parts.append(put_compact_size(entry.services))
            parts.append(bytes([entry.network_id]))
            parts.append(put_var_bytes(entry.address))
            parts.append(struct.pack(">H", entry.port))
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> AddrV2:
        reader = PayloadReader(cls.COMMAND, payload)
        count = reader.count(MAX_ADDR_ENTRIES, _MIN_ADDRV2_ENTRY_SIZE, "addresses")
        entries = []
        for _ in range(count):
            time = reader.u32("time")
            services = reader.compact_size(COMPACT_SIZE_MAX, "services")
            network_id = reader.u8("network id")
            start = reader.offset
            address = reader.var_bytes(MAX_ADDRV2_ADDRESS_SIZE, "address")
            if problem := _check_addrv2_address(network_id, address):
                raise reader.error(problem, start)
            port = reader.u16_be("port")
            entries.append(AddrV2Entry(time, services, network_id, address, port))
        reader.end()
        return cls(tuple(entries))
