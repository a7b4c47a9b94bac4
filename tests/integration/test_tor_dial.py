"""dial() and ClientPool through a real (private) Tor network: onions, Tor's extended errors."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from peerpool.errors import TorOnionError
from peerpool.net import DIRECTORY, StreamIsolation, dial, onion_v3_from_pubkey, parse_address
from peerpool.pool import ClientPool
from tests.integration.conftest import TorNetwork
from tests.pool.line_client import LineClient

pytestmark = pytest.mark.tor

WAIT = 60.0  # an onion connection on a fresh private network takes a few seconds

# RFC 8032 section 5.1: the ed25519 field and curve constant
P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P


def unpublished_onion() -> str:
    """A well-formed onion (valid key and checksum) that no service has published."""
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return onion_v3_from_pubkey(key)


def off_curve_onion() -> str:
    """A checksum-valid onion whose 32 bytes decode to no ed25519 point (RFC 8032 5.1.3)."""
    for y in range(2, 1000):
        x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
        if pow(x2, (P - 1) // 2, P) == P - 1:  # not a square: no x exists
            return onion_v3_from_pubkey(y.to_bytes(32, "little"))
    raise AssertionError("no off-curve y found")


async def test_echo_onion_round_trip_through_tor_socks(tor_network: TorNetwork) -> None:
    isolation = StreamIsolation()
    reader, writer = await asyncio.wait_for(
        dial(
            tor_network.echo_address,
            proxy=tor_network.socks,
            isolation=isolation.credentials(DIRECTORY),
            timeout=WAIT,
        ),
        WAIT,
    )
    writer.write(b"over tor\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), WAIT) == b"over tor\n"
    writer.close()


async def test_unpublished_onion_is_descriptor_not_found(tor_network: TorNetwork) -> None:
    onion = unpublished_onion()
    parse_address(f"{onion}:80")  # our own checks accept it
    with pytest.raises(TorOnionError) as info:
        await asyncio.wait_for(dial(f"{onion}:80", proxy=tor_network.socks, timeout=WAIT), WAIT)
    assert info.value.code == 0xF0
    assert info.value.reason.startswith("onion service descriptor not found")
    assert onion in str(info.value) and "0xF0" in str(info.value)


async def test_off_curve_onion_is_tors_invalid_address(tor_network: TorNetwork) -> None:
    onion = off_curve_onion()
    with pytest.raises(TorOnionError) as info:
        await asyncio.wait_for(dial(f"{onion}:80", proxy=tor_network.socks, timeout=WAIT), WAIT)
    assert info.value.code == 0xF6
    assert "invalid onion address" in info.value.reason


async def test_pool_over_tor_keeps_the_live_onion_and_reports_the_missing_one(
    tor_network: TorNetwork,
) -> None:
    missing = f"{unpublished_onion()}:80"
    pool = ClientPool(
        [tor_network.echo_address, missing],
        client_factory=lambda address: LineClient(address, proxy=tor_network.socks),
        connect_timeout=WAIT,
    )
    async with pool:
        # the echo service answers HELLO with HELLO: the line client's handshake
        outcome = await asyncio.wait_for(pool.connect_all_parallel(), WAIT)
        assert outcome.connected == [tor_network.echo_address]
        error = outcome.errors[missing]
        assert isinstance(error, TorOnionError) and error.code == 0xF0
        client = pool.clients[tor_network.echo_address]
        assert await asyncio.wait_for(client.request("ping"), WAIT) == "ping"
