"""Peer discovery without sockets: addr/addrv2 entries to peers (typed errors
for entries that name none), address groups, and the choice of candidates
(group limit, banned peers, retry delay, bounded memory)."""

from __future__ import annotations

import ipaddress

import pytest

from peerpool.bitcoin import messages as msgs
from peerpool.bitcoin.messages.addr import ip_to_bytes
from peerpool.bitcoin.peer_discovery import (
    Discovery,
    address_group,
    peer_from_addr,
    peer_from_addrv2,
    peers_from_message,
)
from peerpool.errors import BadPeerAddressError, InputError, MalformedMessageError
from peerpool.net import parse_address
from peerpool.net.address import AddressKind, onion_v3_from_pubkey


def timed(host: str, port: int) -> msgs.TimedAddress:
    return msgs.TimedAddress(1_700_000_000, 1, ip_to_bytes(host), port)


def v2(network_id: int, address: bytes, port: int = 8333) -> msgs.AddrV2Entry:
    return msgs.AddrV2Entry(1_700_000_000, 1, network_id, address, port)


def test_addr_entries_become_peers() -> None:
    assert peer_from_addr(timed("127.0.0.1", 18444)).node_id == "127.0.0.1:18444"
    six = peer_from_addr(timed("2001:db8::1", 8333))
    assert six.kind is AddressKind.IPV6 and six.node_id == "[2001:db8::1]:8333"
    for host, port in (("127.0.0.1", 0), ("0.0.0.0", 8333), ("::", 8333), ("224.0.0.1", 1)):
        with pytest.raises(BadPeerAddressError):
            peer_from_addr(timed(host, port))


def test_addrv2_entries_become_peers_or_are_skipped() -> None:
    assert peer_from_addrv2(v2(1, bytes([127, 0, 0, 1]), 18444)).node_id == "127.0.0.1:18444"
    six = peer_from_addrv2(v2(2, ipaddress.IPv6Address("2001:db8::2").packed))
    assert six is not None and six.host == "2001:db8::2"
    key = bytes(range(32))
    onion = peer_from_addrv2(v2(4, key, 9999))
    assert onion is not None and onion.kind is AddressKind.ONION
    assert onion.host == onion_v3_from_pubkey(key)
    # the round trip through our own parser agrees on the name
    assert parse_address(onion.node_id).node_id == onion.node_id
    for skipped in (v2(3, bytes(10)), v2(5, bytes(32)), v2(6, bytes(16)), v2(0x42, b"x")):
        assert peer_from_addrv2(skipped) is None  # Tor v2, I2P, CJDNS, unknown: BIP155 ignores


def test_addrv2_entries_wrong_for_their_network_are_typed_errors() -> None:
    mapped = ip_to_bytes("10.1.2.3")  # IPv4-mapped IPv6: BIP155 forbids it in an IPv6 entry
    bad = [v2(2, mapped), v2(1, bytes([10, 0, 0, 1]), 0), v2(4, bytes(32), 0), v2(1, bytes(5))]
    for entry in bad:
        with pytest.raises(BadPeerAddressError) as caught:
            peer_from_addrv2(entry)
        assert isinstance(caught.value, InputError)


def test_a_message_keeps_its_good_entries_and_reports_the_bad_ones() -> None:
    message = msgs.Addr((timed("127.0.0.1", 1), timed("127.0.0.1", 0), timed("127.0.0.2", 2)))
    peers, errors = peers_from_message(message)
    assert [p.node_id for p in peers] == ["127.0.0.1:1", "127.0.0.2:2"]
    assert len(errors) == 1 and "port 0" in str(errors[0])
    decoded = msgs.AddrV2.decode(
        msgs.AddrV2((v2(1, bytes([127, 0, 0, 3]), 3), v2(5, bytes(32)))).encode()
    )
    peers, errors = peers_from_message(decoded)
    assert [p.node_id for p in peers] == ["127.0.0.3:3"] and errors == []
    # a message that is malformed as a whole is the codec's typed error
    with pytest.raises(MalformedMessageError):
        msgs.AddrV2.decode(b"\x01" + bytes(4) + b"\x01" + b"\x01" + b"\x05" + bytes(5) + b"\x00")


def test_address_groups() -> None:
    group = address_group
    assert group(parse_address("10.1.2.3:1")) == group(parse_address("10.1.200.9:2")) == "ipv4/10.1"
    assert group(parse_address("10.2.2.3:1")) != group(parse_address("10.1.2.3:1"))
    assert group(parse_address("[2001:db8:1::1]:1")) == group(parse_address("[2001:db8:1:ff::]:1"))
    assert group(parse_address("[2001:db8:1::1]:1")) != group(parse_address("[2001:db9::1]:1"))
    assert group(parse_address("[::ffff:10.1.2.3]:1")) == "ipv4/10.1"
    assert group(parse_address("node.example:1")) == "host/node.example"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def addresses(*texts: str) -> list:
    return [parse_address(t) for t in texts]


def test_candidates_respect_the_group_limit_counting_peers_in_use() -> None:
    discovery = Discovery(peers_per_group=2, clock=Clock())
    discovery.learn(addresses("10.1.0.1:1", "10.1.0.2:1", "10.1.0.3:1", "10.2.0.1:1", "10.3.0.1:1"))
    chosen = [a.node_id for a in discovery.candidates(10, [])]
    assert chosen == ["10.1.0.1:1", "10.1.0.2:1", "10.2.0.1:1", "10.3.0.1:1"]
    # a peer in use of group 10.1 takes one of its two places
    in_use = addresses("10.1.9.9:1")
    assert [a.node_id for a in discovery.candidates(10, in_use)][:1] == ["10.1.0.1:1"]
    assert sum(a.host.startswith("10.1.") for a in discovery.candidates(10, in_use)) == 1
    assert len(discovery.candidates(2, [])) == 2  # never more than wanted


def test_banned_in_use_and_recently_tried_peers_are_not_candidates() -> None:
    clock = Clock()
    discovery = Discovery(peers_per_group=10, retry_after=60.0, clock=clock)
    discovery.learn(addresses("10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"))
    banned = {"10.0.0.1:1"}
    discovery.tried("10.0.0.2:1")
    chosen = discovery.candidates(10, addresses("10.0.0.3:1"), lambda n: n in banned)
    assert chosen == []
    clock.now += 61  # the retry delay passed
    chosen = discovery.candidates(10, addresses("10.0.0.3:1"), lambda n: n in banned)
    assert [a.node_id for a in chosen] == ["10.0.0.2:1"]


def test_never_tried_peers_come_first_and_memory_is_bounded() -> None:
    clock = Clock()
    discovery = Discovery(peers_per_group=10, max_known=3, retry_after=0.0, clock=clock)
    new = discovery.learn(addresses("10.0.0.1:1", "10.0.0.2:1", "10.0.0.1:1", "10.0.0.3:1"))
    assert [a.node_id for a in new] == ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"]
    assert discovery.learn(addresses("10.0.0.4:1")) == [] and len(discovery) == 3
    discovery.tried("10.0.0.1:1")
    clock.now += 1
    order = [a.node_id for a in discovery.candidates(3, [])]
    assert order == ["10.0.0.2:1", "10.0.0.3:1", "10.0.0.1:1"]
    with pytest.raises(InputError):
        Discovery(peers_per_group=0)


def test_one_source_cannot_fill_the_table() -> None:
    discovery = Discovery(max_known=10, max_per_source=3)
    flood = addresses(*(f"10.0.0.{i}:1" for i in range(1, 9)))
    assert len(discovery.learn(flood, source="127.0.0.1:1")) == 3
    assert discovery.learn(flood, source="127.0.0.1:1") == []  # its share is used up
    honest = discovery.learn(addresses("10.9.0.1:1", "10.0.0.1:1"), source="127.0.0.1:2")
    assert [a.node_id for a in honest] == ["10.9.0.1:1"]  # known ones are not counted again
    assert len(discovery) == 4
