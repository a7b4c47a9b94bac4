"""Many connections into one node, and rust-libp2p's connection limits."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.errors import MeshDialError
from peerpool.mesh import MeshNode, PeerConnected
from tests.mesh.harness import NodeProcessError


async def many_connections(local, spawn, procs: int, per_proc: int) -> None:
    hub: MeshNode = await local(pubsub="none", event_queue_size=4096)
    children = list(
        await asyncio.gather(*(spawn(nodes=per_proc, pubsub="none") for _ in range(procs)))
    )
    dials = [
        p.call("dial", node=i, addrs=hub.listen_addrs, timeout=60, wait=120)
        for p in children
        for i in range(per_proc)
    ]
    results = await asyncio.gather(*dials)
    total = procs * per_proc
    assert {r["peer_id"] for r in results} == {hub.peer_id}
    connected: set[str] = set()
    loop = asyncio.get_running_loop()
    end = loop.time() + 60
    while len(connected) < total and loop.time() < end:
        for ev in await hub.next_events(timeout=1):
            if isinstance(ev, PeerConnected):
                connected.add(ev.info.peer_id)
    expected = {n["peer_id"] for p in children for n in p.nodes}
    assert connected == expected
    assert {p.peer_id for p in hub.peers()} == expected
    assert all(p.direction == "inbound" for p in hub.peers())
    # one message from each peer reaches the hub
    await asyncio.gather(
        *(
            p.call("send", node=i, peer=hub.peer_id, channel="hi", payload="aGk=")
            for p in children
            for i in range(per_proc)
        )
    )
    senders: set[str] = set()
    end = loop.time() + 60
    while len(senders) < total and loop.time() < end:
        for ev in await hub.next_events(timeout=1):
            peer = getattr(ev, "peer_id", None)
            if type(ev).__name__ == "DirectMessage" and peer:
                senders.add(peer)
    assert senders == expected


@pytest.mark.timeout(180)
async def test_100_connections_into_one_node(local, spawn) -> None:
    await many_connections(local, spawn, procs=4, per_proc=25)


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_1000_connections_into_one_node(local, spawn) -> None:
    await many_connections(local, spawn, procs=10, per_proc=100)


@pytest.mark.timeout(120)
async def test_connection_limit_refuses_the_extra_peers(local, spawn) -> None:
    hub: MeshNode = await local(pubsub="none", max_connections=3)
    child = await spawn(nodes=6, pubsub="none")
    ok, refused = 0, 0
    for i in range(6):
        try:
            await child.call("dial", node=i, addrs=hub.listen_addrs, timeout=10)
            ok += 1
        except NodeProcessError as exc:
            assert exc.kind == "MeshDialError"
            refused += 1
    await asyncio.sleep(0.5)
    # the dialer may see its connection established before the listener denies it
    assert len(hub.peers()) == 3
    assert ok >= 3 and ok + refused == 6
    assert hub.stats["incoming_refused"] >= 3 or refused >= 3


@pytest.mark.timeout(60)
async def test_second_dial_reuses_the_live_connection(local) -> None:
    a: MeshNode = await local(pubsub="none", max_connections_per_peer=1)
    b: MeshNode = await local(pubsub="none")
    await b.dial(a.listen_addrs)
    # a second dial of the same peer returns the live connection
    info = await b.dial(a.listen_addrs)
    assert info.peer_id == a.peer_id
    assert len(b.peers()[0].addrs) == 1
    with pytest.raises(MeshDialError):
        await b.dial("/ip4/127.0.0.1/tcp/1", timeout=3)
