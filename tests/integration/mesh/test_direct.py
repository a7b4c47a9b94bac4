"""Direct messages on /unaiverse/chat/1.0.0 between our nodes in separate processes."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest

from peerpool.errors import (
    MeshAddressError,
    MeshDialError,
    MeshFrameError,
    MeshNotConnectedError,
    PeerpoolError,
)
from peerpool.mesh import (
    DirectMessage,
    Identity,
    MeshNode,
    MessagesDropped,
    PeerConnected,
    PeerDisconnected,
)
from tests.mesh.harness import NodeProcessError, b64, unb64

pytestmark = pytest.mark.timeout(120)


async def collect(node: MeshNode, kind: type, count: int, timeout: float = 20.0) -> list:
    """Events of `kind` until `count` of them came (or the timeout passed)."""
    got: list = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(got) < count and (left := end - loop.time()) > 0:
        got += [e for e in await node.next_events(timeout=left) if isinstance(e, kind)]
    return got


async def test_direct_messages_both_ways_on_one_stream(local, spawn) -> None:
    a: MeshNode = await local()
    b = await spawn()
    info = await a.dial(b.addr)
    assert info.peer_id == b.peer_id and info.direction == "outbound" and not info.relayed
    connected = await collect(a, PeerConnected, 1)
    assert connected[0].info.peer_id == b.peer_id
    chan = f"{a.peer_id}::dm:{b.peer_id}-profile"
    await a.send(b.peer_id, chan, b"hello from a")
    got = await b.call("events", wait_kind="direct", wait_count=1)
    direct = [e for e in got if e["kind"] == "direct"]
    assert direct[0]["peer_id"] == a.peer_id and direct[0]["channel"] == chan
    assert unb64(direct[0]["payload"]) == b"hello from a"
    # b answers; it must write on the stream a opened, and a must read it there
    await b.call(
        "send",
        peer=a.peer_id,
        channel=f"{b.peer_id}::dm:{a.peer_id}-profile",
        payload=b64(b"hello from b"),
    )
    back = await collect(a, DirectMessage, 1)
    assert back[0].peer_id == b.peer_id and back[0].payload == b"hello from b"
    assert a.stats["chat_streams_opened"] == 1 and a.stats["chat_streams_accepted"] == 0
    b_stats = await b.call("stats")
    assert b_stats["chat_streams_opened"] == 0 and b_stats["chat_streams_accepted"] == 1
    # and the peer lists agree on direction
    (b_view,) = await b.call("peers")
    assert b_view["peer_id"] == a.peer_id and b_view["direction"] == "inbound"
    assert [p.peer_id for p in a.peers()] == [b.peer_id] and a.is_connected(b.peer_id)


async def test_dial_checks_the_p2p_peer_id(local, spawn) -> None:
    a: MeshNode = await local()
    b = await spawn()
    wrong = Identity.generate().peer_id
    addr = b.addr.rsplit("/p2p/", 1)[0]
    with pytest.raises(MeshDialError) as info:
        await a.dial(f"{addr}/p2p/{wrong}", timeout=5)
    assert isinstance(info.value, ConnectionError)
    assert not a.is_connected(b.peer_id)
    # several addresses: a dead one first, then the right one
    dead = "/ip4/127.0.0.1/tcp/1/p2p/" + b.peer_id
    assert (await a.dial([dead, b.addr])).peer_id == b.peer_id


async def test_bad_arguments_are_typed_errors(local) -> None:
    a: MeshNode = await local()
    with pytest.raises(MeshAddressError) as info:
        await a.dial("not-a-multiaddr")
    assert isinstance(info.value, ValueError)
    with pytest.raises(MeshNotConnectedError):
        await a.send(Identity.generate().peer_id, "c", b"x")
    with pytest.raises(MeshFrameError):
        await a.send(a.peer_id, "c" * 256, b"x")
    with pytest.raises(MeshNotConnectedError):
        await a.send_many(Identity.generate().peer_id, "c", [b"x", b"y"])
    with pytest.raises(MeshFrameError):
        await a.send_many(a.peer_id, "c", [b"x", b"y" * (50 * 1024 * 1024 + 1)])
    with pytest.raises(TypeError):
        await a.send_many(a.peer_id, "c", [b"x", 3])  # type: ignore[list-item]
    with pytest.raises(MeshAddressError):
        await local(listen=["/ip4/127.0.0.1/tcp/notaport"])
    with pytest.raises(PeerpoolError):
        await local(pubsub="carrier-pigeon")


@pytest.mark.parametrize("batch", [1, 100], ids=["send", "send_many"])
async def test_burst_with_a_slow_consumer_loses_nothing(local, spawn, batch) -> None:
    """A tiny event queue and a consumer that naps: the sender is slowed, not dropped
    (one send per message, or send_many: 100 per call, far more than the queue holds)."""
    a: MeshNode = await local(event_queue_size=16)
    b = await spawn()
    await a.dial(b.addr)
    await b.wait_connected(a.peer_id)
    n = 2000
    sending = asyncio.ensure_future(
        b.call(
            "send_many", peer=a.peer_id, channel="burst", count=n, size=1024, batch=batch, wait=120
        )
    )
    got: list[bytes] = []
    while len(got) < n:
        batch = await a.next_events(max_events=16, timeout=30)
        assert batch, f"stalled after {len(got)} messages"
        got += [e.payload for e in batch if isinstance(e, DirectMessage)]
        assert not [e for e in batch if isinstance(e, MessagesDropped)]
        await asyncio.sleep(0.002)
    await sending
    assert [int(p.rstrip(b".")) for p in got] == list(range(n))
    assert a.stats["dropped"] == 0 and a.stats["messages_in"] == n


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (struct.pack(">IB", 0xFFFF_FFFF, 0), "frame_too_large"),
        # a channel length pointing past the frame
        (struct.pack(">IB", 3, 200) + b"ab", "bad_frame"),
        (struct.pack(">IB", 4, 3) + b"\xff\xfe\xfd", "bad_frame"),
    ],
    ids=["oversized-length", "channel-overrun", "channel-not-utf8"],
)
async def test_bad_frames_from_a_raw_peer_are_counted_drops(local, spawn, raw, reason) -> None:
    a: MeshNode = await local(max_message_size=1 << 20)
    b = await spawn()
    await a.dial(b.addr)
    await b.wait_connected(a.peer_id)
    await b.call("send_raw", peer=a.peer_id, data=b64(raw))
    drops = await collect(a, MessagesDropped, 1)
    assert drops == [MessagesDropped(reason, b.peer_id, 1)]
    assert a.stats[f"dropped_{reason}"] == 1 and a.stats["streams_reset"] == 1
    # the stream was reset, the connection stays, and messages flow again
    assert a.is_connected(b.peer_id)
    for _ in range(50):
        with contextlib.suppress(NodeProcessError):
            await b.call("send", peer=a.peer_id, channel="after", payload=b64(b"still here"))
        got = await collect(a, DirectMessage, 1, timeout=0.5)
        if got:
            assert got[0].payload == b"still here"
            break
    else:
        pytest.fail("no message got through after the reset")


async def test_truncated_frame_is_a_counted_drop(local, spawn) -> None:
    a: MeshNode = await local()
    b = await spawn()
    await a.dial(b.addr)
    await b.wait_connected(a.peer_id)
    await b.call(
        "send_raw", peer=a.peer_id, data=b64(struct.pack(">IB", 100, 2) + b"ch" + b"x" * 10)
    )
    await asyncio.sleep(0.3)
    await b.call("disconnect", peer=a.peer_id)
    events = await collect(a, MessagesDropped, 1)
    assert events[0].reason == "truncated_frame" and events[0].peer_id == b.peer_id


async def test_killed_peer_is_reported_disconnected(local, spawn) -> None:
    a: MeshNode = await local()
    procs = [await spawn() for _ in range(3)]
    for p in procs:
        await a.dial(p.addr)
    await collect(a, PeerConnected, 3)
    procs[1].kill()
    gone = await collect(a, PeerDisconnected, 1)
    assert gone[0].peer_id == procs[1].peer_id
    assert {p.peer_id for p in a.peers()} == {procs[0].peer_id, procs[2].peer_id}
    with pytest.raises(MeshNotConnectedError):
        await a.send(procs[1].peer_id, "c", b"x")


async def test_quic_v1_direct_messages(local, spawn) -> None:
    a: MeshNode = await local(listen=["/ip4/127.0.0.1/udp/0/quic-v1"])
    (addr,) = a.listen_addrs
    assert "/quic-v1/p2p/" in addr
    b = await spawn(listen=["/ip4/127.0.0.1/udp/0/quic-v1"])
    info = await b.call("dial", addrs=[addr])
    assert info["peer_id"] == a.peer_id and "/quic-v1" in info["addrs"][0]
    await b.call("send", peer=a.peer_id, channel="q", payload=b64(b"over quic"))
    got = await collect(a, DirectMessage, 1)
    assert got[0].payload == b"over quic"
    await a.send(b.peer_id, "q", b"and back")
    back = await b.call("events", wait_kind="direct", wait_count=1)
    assert [unb64(e["payload"]) for e in back if e["kind"] == "direct"] == [b"and back"]


async def test_stop_is_idempotent_and_closes_the_api(local) -> None:
    from peerpool.errors import MeshClosedError

    a: MeshNode = await local()
    await a.stop()
    await a.stop()
    with pytest.raises(MeshClosedError):
        await a.next_events(timeout=0.1)
    with pytest.raises(MeshClosedError):
        await a.dial("/ip4/127.0.0.1/tcp/1")
