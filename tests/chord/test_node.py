"""The asyncio DHT node's API and state machine, over an in-process fake transport."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import pytest

from peerpool.chord import ops
from peerpool.chord.node import ChordNode
from peerpool.chord.ring import get_hashes
from peerpool.errors import (
    ChordJoinError,
    ChordKeyError,
    ChordTimeoutError,
    ChordTypeError,
    InputError,
    ValueTooLargeError,
)
from tests.chord.fake_transport import FakeNetwork


async def _ring(net: FakeNetwork, n: int, **options: object) -> list[ChordNode]:
    nodes = []
    for i in range(n):
        node = ChordNode(net.transport(f"peer-{i:03d}"), stabilise_interval=0.02, **options)  # type: ignore[arg-type]
        await node.start()
        if nodes:
            await node.join(nodes[0].transport.listen_addrs[0])
        nodes.append(node)
    await _settle(nodes)
    return nodes


async def _settle(nodes: list[ChordNode]) -> None:
    # Until every successor and predecessor pointer is right (maintenance runs
    # every 20 ms): the hop bound is for a ring that has converged, and a
    # stale predecessor makes a node refuse what it owns, a hop more each time.
    for _ in range(300):
        ring = sorted((x for x in nodes if x.core.storing), key=lambda x: x.id)
        if all(
            x.next.peer_id == ring[(i + 1) % len(ring)].core.me.peer_id
            and x.prev.peer_id == ring[i - 1].core.me.peer_id
            for i, x in enumerate(ring)
        ):
            break
        await asyncio.sleep(0.02)
    for node in nodes:
        if node._maintenance is not None:
            await node._run(ops.fix_fingers(node.core), 10, "fix fingers")


@pytest.fixture
async def ring() -> AsyncIterator[list[ChordNode]]:
    nodes = await _ring(FakeNetwork(), 16)
    yield nodes
    for node in nodes:
        await node.stop()


async def test_every_key_set_from_any_node_is_read_from_every_node(ring: list[ChordNode]) -> None:
    for i, node in enumerate(ring):
        await node.set(f"key-{i}", f"value-{i}")
    for node in ring:
        node.core.hops.clear()
    for reader in ring:
        for i in range(len(ring)):
            assert await reader.get(f"key-{i}") == f"value-{i}"
    hops = max(max(n.core.hops, default=0) for n in ring)
    assert hops <= math.log2(len(ring)) + 2


async def test_a_missing_key_is_the_default_at_once(ring: list[ChordNode]) -> None:
    started = time.monotonic()
    assert await ring[3].get("never set", default="none", timeout=10) == "none"
    assert time.monotonic() - started < 1.0  # answered, not timed out


async def test_the_dict_api(ring: list[ChordNode]) -> None:
    a, b = ring[0], ring[7]
    await a.update({"x": "1", b"y": b"2", "z": "3"})
    assert await b.get("x") == "1" and await b.get(b"y") == b"2"
    assert sorted(map(str, await b.keys())) == sorted(["x", "b'y'", "z"])
    assert await b.copy() == {"x": "1", b"y": b"2", "z": "3"}
    assert sorted(map(str, await a.values())) == ["1", "3", "b'2'"]
    assert await b.pop("x") == "1"
    assert await a.get("x") is None
    assert await a.pop("x", "gone") == "gone"
    with pytest.raises(ChordKeyError):
        await a.pop("x")
    key, value = await b.popitem()
    assert (key, value) in {(b"y", b"2"), ("z", "3")}
    assert len(await a.items()) == 1
    # dump_data: this node's own share, by table, as py2p returns it
    held = [a.dump_data(0, None) for a in ring]
    assert sum(len(d[b"sha384"]) for d in held) >= 1
    assert set(held[0]) == {b"sha1", b"sha224", b"sha256", b"sha384", b"sha512"}


async def test_keys_and_values_of_the_wrong_type_or_size_are_typed_errors(
    ring: list[ChordNode],
) -> None:
    node = ring[1]
    for bad in (3, None, 1.5, ["k"], object()):
        with pytest.raises(ChordTypeError):
            await node.set(bad, "v")
        with pytest.raises(ChordTypeError):
            await node.get(bad)
    with pytest.raises(ChordTypeError):
        await node.set("k", 42)
    with pytest.raises(ValueTooLargeError) as info:
        await node.set("k", b"x" * (node.core.max_value_bytes + 1))
    assert isinstance(info.value, InputError)
    with pytest.raises(ValueTooLargeError):
        await node.set("k" * 5000, "v")
    assert await node.get("k") is None  # nothing was stored by the refused calls


async def test_a_node_that_never_answers_is_outvoted_or_a_timeout_not_a_hang(
    ring: list[ChordNode],
) -> None:
    for i in range(20):
        await ring[0].set(f"k{i}", f"v{i}")
    silent = ring[5]
    silent.transport.silent = True  # type: ignore[attr-defined]
    started = time.monotonic()
    for i in range(20):
        assert await ring[2].get(f"k{i}", timeout=8) == f"v{i}"
    # Each get waits at most for the request timeout on the silent owner's position.
    assert time.monotonic() - started < 20 * 2 * ring[2].request_timeout + 5


async def test_a_get_times_out_with_a_typed_error_when_every_owner_is_silent() -> None:
    net = FakeNetwork()
    nodes = await _ring(net, 3)
    await nodes[0].set("k", "v")
    await nodes[0].unjoin()  # it holds nothing now: every answer must come from the others
    for node in nodes[1:]:
        node.transport.silent = True  # type: ignore[attr-defined]
    started = time.monotonic()
    with pytest.raises(ChordTimeoutError) as info:
        await nodes[0].get("k", timeout=0.5)
    assert isinstance(info.value, TimeoutError)
    assert time.monotonic() - started < 2.0
    for node in nodes:
        await node.stop()


async def test_join_to_an_address_with_nothing_behind_it_is_a_typed_error() -> None:
    net = FakeNetwork()
    node = ChordNode(net.transport("lonely"))
    await node.start()
    started = time.monotonic()
    with pytest.raises(ChordJoinError):
        await node.join("/memory/nobody/p2p/nobody", timeout=1.0)
    silent = ChordNode(net.transport("mute"))
    await silent.start()
    silent.transport.silent = True  # type: ignore[attr-defined]
    with pytest.raises(ChordJoinError):
        await node.join(silent.transport.listen_addrs[0], timeout=0.5)
    assert time.monotonic() - started < 3.0
    await node.stop()
    await silent.stop()


async def test_leave_hands_keys_over_and_a_killed_node_is_repaired_around() -> None:
    net = FakeNetwork()
    nodes = await _ring(net, 8, repair_every=2)
    for i in range(40):
        await nodes[i % 8].set(f"k{i}", f"v{i}")
    await nodes[3].leave()
    nodes[6].transport.dead = True  # type: ignore[attr-defined]
    rest = [n for i, n in enumerate(nodes) if i not in (3, 6)]
    await asyncio.sleep(0.3)
    for i in range(40):
        assert await rest[i % len(rest)].get(f"k{i}") == f"v{i}"
    for node in nodes:
        await node.stop()


async def test_find_next_prev_and_disconnect_least_efficient(ring: list[ChordNode]) -> None:
    node = ring[4]
    ordered = sorted(ring, key=lambda x: x.id)
    i = ordered.index(node)
    assert node.next.peer_id == ordered[(i + 1) % len(ring)].core.me.peer_id
    assert node.prev.peer_id == ordered[i - 1].core.me.peer_id
    pos = get_hashes("somewhere")[3]
    owner, hops = await node.lookup(pos)
    assert owner.peer_id == node.find_prev(pos).peer_id or hops > 0
    before = len(node.core.routing.known())
    assert await node.disconnect_least_efficient() in (True, False)
    assert len(node.core.routing.known()) <= before


async def test_concurrent_sets_are_coalesced_per_owner_and_all_land(ring: list[ChordNode]) -> None:
    writer = ring[2]
    await asyncio.gather(*(writer.set(f"burst-{i}", f"v{i}") for i in range(300)))
    # 300 sets x up to 5 owners each would be ~1,500 Puts one by one.
    assert writer._batcher.flushes < 300
    # and the sets themselves were written a batch at a time, not one by one
    assert writer._writes.flushes < 30
    values = await asyncio.gather(*(ring[9].get(f"burst-{i}") for i in range(300)))
    assert values == [f"v{i}" for i in range(300)]


async def test_a_malformed_request_is_answered_counted_and_its_peer_dropped(
    ring: list[ChordNode],
) -> None:
    from peerpool.chord import messages as m
    from peerpool.chord import wire
    from peerpool.chord.transport import PROTOCOL

    target = ring[3]
    net = target.transport.net  # type: ignore[attr-defined]
    rogue = net.transport("rogue")
    for garbage in (b"", b"\x01\xc8", bytes([m.VERSION, 3, 0]) + b"\xff" * 4, b"\x07" * 100):
        answer = wire.decode(await rogue.request(target.core.me.peer_id, PROTOCOL, garbage))
        assert isinstance(answer, m.Error) and answer.code.startswith("bad_message")
    assert target.core.counters["bad_message"] == 4
    await asyncio.sleep(0.1)
    assert "rogue" in target.transport.disconnected  # type: ignore[attr-defined]
    assert await target.get("still fine", default="yes") == "yes"


async def test_hops_outside_the_routing_table_are_disconnected_once_idle() -> None:
    nodes = await _ring(FakeNetwork(), 32, idle_hop_timeout=0.05)
    try:
        reader = nodes[7]
        await asyncio.gather(*(reader.get(f"spread-{i}") for i in range(200)))
        transport = reader.transport
        touched = set(transport.outbound)  # type: ignore[attr-defined]
        known = {n.peer_id for n in reader.core.routing.known()}
        assert touched - known  # iterative lookups did reach beyond the table
        await asyncio.sleep(0.3)  # idle past the limit, and a maintenance round or more
        assert set(transport.outbound) <= known | set(reader._last_used)  # type: ignore[attr-defined]
        assert reader.core.counters["hops_disconnected"] > 0
        assert len(known) <= 2 * math.log2(32) + 8
    finally:
        for node in nodes:
            await node.stop()
