"""gossipsub and floodsub fan-out: one publisher, 50 subscribers in 5 processes."""

from __future__ import annotations

import asyncio

import pytest

from peerpool.mesh import MeshNode, TopicMessage
from tests.mesh.harness import NodeProcess, b64, unb64

pytestmark = pytest.mark.timeout(240)

PROCS = 5
PER_PROC = 10
MESSAGES = 20


async def fan_out(local, spawn, pubsub: str, size: int) -> None:
    publisher: MeshNode = await local(pubsub=pubsub)
    topic = f"{publisher.peer_id}::ps:fanout"
    procs: list[NodeProcess] = list(
        await asyncio.gather(*(spawn(nodes=PER_PROC, pubsub=pubsub) for _ in range(PROCS)))
    )
    subs = [(p, i) for p in procs for i in range(PER_PROC)]
    for p, i in subs:
        await p.call("subscribe", node=i, topic=topic)
    await asyncio.gather(*(p.call("dial", node=i, addrs=publisher.listen_addrs) for p, i in subs))
    await publisher.subscribe(topic)
    # Subscriptions travel asynchronously: warm up until every subscriber hears us.
    heard: set[tuple[int, int]] = set()
    for _ in range(60):
        await publisher.publish(topic, b"warmup")
        await asyncio.sleep(0.25)
        for k, (p, i) in enumerate(subs):
            if (k, 0) in heard:
                continue
            got = await p.call("events", node=i, summary=True)
            if got["counts"].get("topic"):
                heard.add((k, 0))
        if len(heard) == len(subs):
            break
    assert len(heard) == len(subs), f"only {len(heard)} of {len(subs)} subscribers joined"
    await asyncio.sleep(0.5)  # let straggling warm-ups land before counting
    for p, i in subs:
        await p.call("events", node=i)
    for k in range(MESSAGES):
        await publisher.publish(topic, str(k).encode().ljust(size, b"."))
    for p, i in subs:
        got = await p.call(
            "events", node=i, wait_kind="topic", wait_count=MESSAGES, timeout=30, summary=True
        )
        payloads = sorted(int(unb64(x).rstrip(b".")) for x in got["payloads"])
        assert payloads == list(range(MESSAGES)), f"subscriber {p.nodes[i]['peer_id']}"
        stats = await p.call("stats", node=i)
        assert stats["dropped"] == 0
    # and one subscriber publishes back to the publisher
    p0, _ = subs[0]
    await p0.call("publish", node=0, topic=topic, data=b64(b"from a subscriber"))
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    back: list[TopicMessage] = []
    while not back and loop.time() < end:
        back = [e for e in await publisher.next_events(timeout=1) if isinstance(e, TopicMessage)]
    assert back and back[0].data == b"from a subscriber" and back[0].topic == topic
    assert back[0].source == p0.nodes[0]["peer_id"]


async def test_gossipsub_fan_out_to_50_subscribers_loses_nothing(local, spawn) -> None:
    await fan_out(local, spawn, "gossipsub", 1024)


async def test_floodsub_fan_out_to_50_subscribers_loses_nothing(local, spawn) -> None:
    await fan_out(local, spawn, "floodsub", 1024)


async def test_floodsub_carries_large_signed_messages_up_to_max_message_size(local, spawn) -> None:
    """floodsub is gossipsub speaking /floodsub/1.0.0: no 2,048-byte RPC limit (rust-libp2p's
    floodsub crate had one), messages signed and verified; the limit is max_message_size."""
    from peerpool.errors import MeshError

    limit = 300_000
    publisher: MeshNode = await local(pubsub="floodsub", max_message_size=limit)
    topic = f"{publisher.peer_id}::ps:big"
    sub = await spawn(nodes=2, pubsub="floodsub")
    for i in range(2):
        await sub.call("subscribe", node=i, topic=topic)
        await sub.call("dial", node=i, addrs=publisher.listen_addrs)
    await publisher.subscribe(topic)
    big = bytes(range(256)) * 1000  # 256,000 bytes
    heard: set[int] = set()
    for _ in range(60):
        await publisher.publish(topic, big)
        await asyncio.sleep(0.25)
        for i in range(2):
            got = await sub.call("events", node=i, summary=True)
            for data in got["payloads"]:
                assert unb64(data) == big
                heard.add(i)
        if heard == {0, 1}:
            break
    assert heard == {0, 1}, f"only subscribers {heard} got the 256,000-byte message"
    with pytest.raises(MeshError):
        await publisher.publish(topic, b"x" * (limit + 1))


async def test_unsubscribe_stops_delivery(local, spawn) -> None:
    pub: MeshNode = await local()
    sub = await spawn()
    await sub.call("subscribe", topic="t")
    await sub.call("dial", addrs=pub.listen_addrs)
    for _ in range(40):
        await pub.publish("t", b"probe")
        got = await sub.call("events", summary=True, wait_kind="topic", wait_count=1, timeout=0.25)
        if got["counts"].get("topic"):
            break
    else:
        pytest.fail("subscriber never received")
    await sub.call("unsubscribe", topic="t")
    await asyncio.sleep(1.0)
    await sub.call("events")
    for _ in range(5):
        await pub.publish("t", b"after")
    got = await sub.call("events", summary=True, wait_kind="topic", wait_count=1, timeout=1.5)
    assert not got["counts"].get("topic")
    assert pub.stats["publish_no_peers"] >= 1
