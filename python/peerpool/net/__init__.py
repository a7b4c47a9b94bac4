"""Transports: addresses, TCP and SOCKS/Tor dialing, stream isolation, backoff.

``dial`` is the one way the library opens connections; ``parse_address`` the
one way it reads server addresses; ``Backoff`` the one retry policy.
"""

from peerpool.net.address import Address, AddressKind, node_id, onion_v3_from_pubkey, parse_address
from peerpool.net.backoff import Backoff, BackoffRun
from peerpool.net.dial import DEFAULT_DIAL_TIMEOUT, DEFAULT_READ_LIMIT, dial
from peerpool.net.isolation import DIRECTORY, PEER, SocksAuth, StreamIsolation
from peerpool.net.proxy import ProxyConfig, ProxyKind

__all__ = [
    "DEFAULT_DIAL_TIMEOUT",
    "DEFAULT_READ_LIMIT",
    "DIRECTORY",
    "PEER",
    "Address",
    "AddressKind",
    "Backoff",
    "BackoffRun",
    "ProxyConfig",
    "ProxyKind",
    "SocksAuth",
    "StreamIsolation",
    "dial",
    "node_id",
    "onion_v3_from_pubkey",
    "parse_address",
]
