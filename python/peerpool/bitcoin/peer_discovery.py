"""Peer discovery, sans I/O: ``addr``/``addrv2`` entries to dialable addresses,
address groups, and the choice of which learned peer to dial next.

:class:`ClientManager` (with ``discover_peers=True``) feeds every address
message its peers send to a :class:`Discovery`, and asks it for candidates
when fewer peers than it wants are connected. Nothing here opens a socket,
so the rules are tested without a network:

* an entry that cannot name a peer (port 0, the unspecified address, an
  IPv4-mapped address inside an addrv2 IPv6 entry, which BIP155 forbids) is a
  :class:`~peerpool.errors.BadPeerAddressError`; networks we cannot dial
  (I2P, CJDNS, Tor v2, ids BIP155 does not know) are skipped, as BIP155 asks;
* at most ``peers_per_group`` connections per address group (the /16 of an
  IPv4 address, the /32 of an IPv6 one, as Bitcoin Core's netgroups): a peer
  that floods us with addresses of one subnet it controls gets few slots;
* at most ``max_known`` addresses are kept (the first learned win), at most
  ``max_per_source`` from any one announcing peer (no single peer fills the
  table), and a peer tried less than ``retry_after`` seconds ago is not
  tried again.

Banned peers are never candidates (the caller passes the peer store's check).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from peerpool.bitcoin.messages.addr import (
    MAX_ADDR_ENTRIES,
    Addr,
    AddrV2,
    AddrV2Entry,
    TimedAddress,
    bytes_to_ip,
)
from peerpool.errors import AddressError, BadPeerAddressError, InputError
from peerpool.net import Address
from peerpool.net.address import AddressKind, onion_v3_from_pubkey

# BIP155 network ids
NET_IPV4 = 1
NET_IPV6 = 2
NET_TORV3 = 4

#: Bitcoin Core makes one outbound connection per netgroup; two here, so that
#: a private network inside one /16 (or loopback) still gets a second peer.
DEFAULT_PEERS_PER_GROUP = 2
#: Addresses kept in all: a few thousand are plenty to find eight peers, and
#: bound what a flood of addr messages can cost.
DEFAULT_MAX_KNOWN = 5_000
#: Addresses kept from one announcing peer: one full addr message's worth
#: (MAX_ADDR_ENTRIES), so that no single peer fills the table (an eclipse).
DEFAULT_MAX_PER_SOURCE = MAX_ADDR_ENTRIES
#: Seconds before a learned peer that was tried (and failed or dropped) is tried again.
DEFAULT_RETRY_AFTER = 60.0

_IPV4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"


def _ip_address(host: str, port: int, what: str) -> Address:
    if port == 0:
        raise BadPeerAddressError(f"{what}: port 0 names no peer ({host})")
    ip = ipaddress.ip_address(host)
    if ip.is_unspecified or ip.is_multicast:
        raise BadPeerAddressError(f"{what}: {host} is not a peer's address")
    kind = AddressKind.IPV4 if ip.version == 4 else AddressKind.IPV6
    return Address(str(ip), port, kind)


def peer_from_addr(entry: TimedAddress) -> Address:
    """The peer an ``addr`` entry names. Raises BadPeerAddressError for one
    that names none (port 0, the unspecified or a multicast address)."""
    if len(entry.ip) != 16:
        raise BadPeerAddressError(f"addr entry: ip of {len(entry.ip)} bytes, not 16")
    return _ip_address(bytes_to_ip(entry.ip), entry.port, "addr entry")


def peer_from_addrv2(entry: AddrV2Entry) -> Address | None:
    """The peer a BIP155 ``addrv2`` entry names, or None for a network we do
    not dial (I2P, CJDNS, Tor v2, unknown ids: skipped, not errors, as BIP155
    asks). Raises BadPeerAddressError for an entry that is wrong for its own
    network (a wrong size, an IPv4-mapped IPv6 address, port 0, ...)."""
    net, raw = entry.network_id, bytes(entry.address)
    sizes = {NET_IPV4: 4, NET_IPV6: 16, NET_TORV3: 32}
    if net not in sizes:
        return None
    if len(raw) != sizes[net]:
        raise BadPeerAddressError(
            f"addrv2 entry: network {net} needs {sizes[net]} address bytes, not {len(raw)}"
        )
    if net == NET_IPV4:
        return _ip_address(str(ipaddress.IPv4Address(raw)), entry.port, "addrv2 entry")
    if net == NET_IPV6:
        if raw.startswith(_IPV4_MAPPED_PREFIX):
            raise BadPeerAddressError("addrv2 entry: an IPv4-mapped address in an IPv6 entry")
        return _ip_address(str(ipaddress.IPv6Address(raw)), entry.port, "addrv2 entry")
    if entry.port == 0:
        raise BadPeerAddressError("addrv2 entry: port 0 names no peer (onion)")
    try:
        host = onion_v3_from_pubkey(raw)
    except AddressError as exc:  # not reachable with 32 bytes; kept typed all the same
        raise BadPeerAddressError(f"addrv2 entry: {exc}") from exc
    return Address(host, entry.port, AddressKind.ONION)


def peers_from_message(message: Addr | AddrV2) -> tuple[list[Address], list[BadPeerAddressError]]:
    """The dialable peers of an address message, and the errors of the entries
    that name none (each entry on its own: one bad entry does not hide the rest)."""
    peers: list[Address] = []
    errors: list[BadPeerAddressError] = []
    for entry in message.addresses:
        try:
            if isinstance(entry, AddrV2Entry):
                peer = peer_from_addrv2(entry)
            else:
                peer = peer_from_addr(entry)
        except BadPeerAddressError as exc:
            errors.append(exc)
            continue
        if peer is not None:
            peers.append(peer)
    return peers, errors


def address_group(address: Address) -> str:
    """The group an address counts against: ``"ipv4/a.b"`` (its /16),
    ``"ipv6/xxxx:xxxx"`` (its /32), ``"onion/<first letter>"``, or the host
    name itself. Connections per group are limited."""
    if address.kind is AddressKind.IPV4:
        a, b = address.host.split(".")[:2]
        return f"ipv4/{a}.{b}"
    if address.kind is AddressKind.IPV6:
        packed = ipaddress.IPv6Address(address.host).packed
        if packed.startswith(_IPV4_MAPPED_PREFIX):
            return f"ipv4/{packed[12]}.{packed[13]}"
        return f"ipv6/{packed[:2].hex()}:{packed[2:4].hex()}"
    if address.kind is AddressKind.ONION:
        return f"onion/{address.host[:1]}"
    return f"host/{address.host}"


@dataclass
class _Known:
    address: Address
    tried_at: float | None = None


class Discovery:
    """Addresses learned from peers, and which to dial next (see the module)."""

    def __init__(
        self,
        *,
        peers_per_group: int = DEFAULT_PEERS_PER_GROUP,
        max_known: int = DEFAULT_MAX_KNOWN,
        max_per_source: int = DEFAULT_MAX_PER_SOURCE,
        retry_after: float = DEFAULT_RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raises InputError for a limit below 1."""
        if min(peers_per_group, max_known, max_per_source) < 1:
            raise InputError("peers_per_group, max_known and max_per_source must be at least 1")
        self.peers_per_group = peers_per_group
        self.max_known = max_known
        self.max_per_source = max_per_source
        self._per_source: dict[str, int] = {}
        self.retry_after = retry_after
        self._clock = clock
        self._known: dict[str, _Known] = {}

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._known

    def learn(self, addresses: Iterable[Address], source: str = "") -> list[Address]:
        """Remember these addresses, announced by peer ``source``; returns the
        ones that were new. Beyond ``max_known`` addresses in all, or
        ``max_per_source`` from this source, new ones are not kept."""
        new = []
        taken = self._per_source.get(source, 0)
        for address in addresses:
            if address.node_id in self._known:
                continue
            if len(self._known) >= self.max_known or taken >= self.max_per_source:
                break
            self._known[address.node_id] = _Known(address)
            new.append(address)
            taken += 1
        self._per_source[source] = taken
        return new

    def tried(self, node_id: str) -> None:
        """A dial of ``node_id`` started: not a candidate again for ``retry_after`` s."""
        known = self._known.get(node_id)
        if known is not None:
            known.tried_at = self._clock()

    def candidates(
        self,
        wanted: int,
        in_use: Iterable[Address],
        is_banned: Callable[[str], bool] = lambda _: False,
    ) -> list[Address]:
        """Up to ``wanted`` learned addresses to dial: not in ``in_use`` (the
        peers connected or being dialled), not banned, not tried within
        ``retry_after``, within ``peers_per_group`` per group counting
        ``in_use``; never tried first, then the longest ago."""
        used = list(in_use)
        taken = {a.node_id for a in used}
        groups: dict[str, int] = {}
        for address in used:
            group = address_group(address)
            groups[group] = groups.get(group, 0) + 1
        now = self._clock()
        order = sorted(
            self._known.values(),
            key=lambda k: -1.0 if k.tried_at is None else k.tried_at,
        )
        chosen: list[Address] = []
        for known in order:
            if len(chosen) >= wanted:
                break
            address = known.address
            if address.node_id in taken or is_banned(address.node_id):
                continue
            if known.tried_at is not None and now - known.tried_at < self.retry_after:
                continue
            group = address_group(address)
            if groups.get(group, 0) >= self.peers_per_group:
                continue
            groups[group] = groups.get(group, 0) + 1
            taken.add(address.node_id)
            chosen.append(address)
        return chosen
