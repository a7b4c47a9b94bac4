"""Relay v2 on loopback: what can be checked without network namespaces.

The namespace test (private node, relay, dialer on veth pairs) is the
mesh-interop suite's; here: a reservation either works or fails with a typed
error within its timeout, never hangs, and a relayed dial works when it does.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from peerpool.errors import MeshAddressError, MeshDialError
from peerpool.mesh import DirectMessage, MeshNode
from tests.mesh.harness import b64

pytestmark = pytest.mark.timeout(90)


async def test_reserve_on_a_node_that_is_no_relay_is_a_typed_error(local, spawn) -> None:
    a: MeshNode = await local()
    not_a_relay = await spawn()
    started = time.monotonic()
    with pytest.raises(MeshDialError):
        await a.reserve(not_a_relay.addr, timeout=5)
    assert time.monotonic() - started < 10
    with pytest.raises(MeshAddressError):
        await a.reserve("/ip4/127.0.0.1/tcp/1")  # no /p2p/<relay>


async def test_reserve_and_dial_through_a_relay_on_loopback(local, spawn) -> None:
    relay = await spawn(relay_server=True)
    private: MeshNode = await local()
    expiry = await private.reserve(relay.addr, timeout=10)
    assert expiry > time.time() + 60
    circuit = f"{relay.addr}/p2p-circuit/p2p/{private.peer_id}"
    # the reservation's circuit address is among ours now
    await asyncio.sleep(0.2)
    assert any("/p2p-circuit" in a for a in private.listen_addrs)
    dialer = await spawn()
    info = await dialer.call("dial", addrs=[circuit], timeout=10)
    assert info["peer_id"] == private.peer_id and info["relayed"] is True
    await dialer.call(
        "send", peer=private.peer_id, channel="via-relay", payload=b64(b"relayed hello")
    )
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    got: list[DirectMessage] = []
    while not got and loop.time() < end:
        got = [e for e in await private.next_events(timeout=1) if isinstance(e, DirectMessage)]
    assert got and got[0].payload == b"relayed hello" and got[0].peer_id == dialer.peer_id
    (view,) = [p for p in private.peers() if p.peer_id == dialer.peer_id]
    assert view.relayed and view.direction == "inbound"
