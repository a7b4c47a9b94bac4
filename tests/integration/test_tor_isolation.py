"""Stream isolation checked in Tor itself: its control port shows which circuit carries what.

Each test uses its own StreamIsolation (a random token in every password), so
a circuit whose SOCKS_PASSWORD carries that token can only hold this test's
streams; ``GETINFO stream-status`` gives each stream's circuit and
``GETINFO circuit-status`` each circuit's SOCKS credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from peerpool.net import DIRECTORY, PEER, SocksAuth, StreamIsolation, dial
from tests.integration.conftest import TorNetwork

pytestmark = [
    pytest.mark.tor,
    # stem 1.8 still calls Thread.setDaemon(); nothing we can change
    pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning"),
]

WAIT = 60.0


def our_streams(network: TorNetwork, token: str) -> dict[str, tuple[str, str]]:
    """stream id -> (circuit id, SOCKS username) for streams on circuits carrying ``token``."""
    with network.controller() as ctl:
        streams = ctl.get_info("stream-status")  # type: ignore[attr-defined]
        circuits = {c.id: c for c in ctl.get_circuits()}  # type: ignore[attr-defined]
    found: dict[str, tuple[str, str]] = {}
    for line in streams.splitlines():
        stream_id, status, circ_id, target = line.split()[:4]
        circuit = circuits.get(circ_id)
        if circuit is None or not (circuit.socks_password or "").startswith(token):
            continue
        assert status == "SUCCEEDED" and target == network.echo_address
        found[stream_id] = (circ_id, circuit.socks_username)
    return found


@contextlib.asynccontextmanager
async def open_streams(network: TorNetwork, *auths: SocksAuth) -> AsyncIterator[None]:
    """Connections to the echo onion, one per credential pair, opened in order."""
    writers = []
    try:
        for auth in auths:
            reader, writer = await asyncio.wait_for(
                dial(network.echo_address, proxy=network.socks, isolation=auth, timeout=WAIT),
                WAIT,
            )
            writers.append(writer)
            writer.write(b"up?\n")  # a round trip: the stream is attached and working
            assert await asyncio.wait_for(reader.readline(), WAIT) == b"up?\n"
        yield
    finally:
        for writer in writers:
            writer.close()


async def streams_seen(network: TorNetwork, token: str) -> dict[str, tuple[str, str]]:
    return await asyncio.wait_for(asyncio.to_thread(our_streams, network, token), WAIT)


async def test_directory_and_peer_streams_use_different_circuits(
    tor_network: TorNetwork,
) -> None:
    isolation = StreamIsolation(token="iso-a")
    directory, peer = isolation.credentials(DIRECTORY), isolation.credentials(PEER)
    # opened at the same time, as a taker does when it meets a maker
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.gather(
            stack.enter_async_context(open_streams(tor_network, directory)),
            stack.enter_async_context(open_streams(tor_network, peer)),
        )
        seen = await streams_seen(tor_network, "iso-a")
    assert len(seen) == 2
    circuit_of = {username: circ for circ, username in seen.values()}
    assert set(circuit_of) == {"peerpool-directory", "peerpool-peer"}
    assert circuit_of["peerpool-directory"] != circuit_of["peerpool-peer"]


async def test_one_category_shares_one_circuit(tor_network: TorNetwork) -> None:
    isolation = StreamIsolation(token="iso-b")
    directory = isolation.credentials(DIRECTORY)
    async with open_streams(tor_network, directory, directory):
        seen = await streams_seen(tor_network, "iso-b")
    assert len(seen) == 2
    assert len({circ for circ, _ in seen.values()}) == 1


async def test_fresh_credentials_give_each_connection_its_own_circuit(
    tor_network: TorNetwork,
) -> None:
    isolation = StreamIsolation(token="iso-c", fresh_per_connection=True)
    first, second = isolation.credentials(PEER), isolation.credentials(PEER)
    async with open_streams(tor_network, first, second):
        seen = await streams_seen(tor_network, "iso-c")
    assert len(seen) == 2
    assert len({circ for circ, _ in seen.values()}) == 2
