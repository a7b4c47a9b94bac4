"""py-libp2p (PyPI ``libp2p``, trio) as a third-party libp2p peer, each in its own process.

First the py-libp2p peer program is proved against itself (two of its processes), so
that a failure against our node points at our node, not at the test peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from peerpool.errors import MeshError
from peerpool.mesh import DirectMessage, Identity, MeshNode, PeerConnected, TopicMessage
from tests.integration.mesh.conftest import PeerFactory
from tests.integration.mesh.jsonl_proc import JsonLineProcess, b64, unb64
from tests.integration.mesh.pylibp2p_chat import PROTOCOL as CHAT

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58(data: bytes) -> str:
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def go_key_file(path: str) -> str:
    """Write an Ed25519 key as go-libp2p does (protobuf, 64-byte data); return its peer id."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with open(path, "wb") as f:
        f.write(b"\x08\x01\x12\x40" + seed + pub)
    # an Ed25519 peer id is the identity multihash of the protobuf public key
    return _b58(b"\x00\x24" + b"\x08\x01\x12\x20" + pub)


async def _pair(pylibp2p: PeerFactory, *args: str) -> tuple[JsonLineProcess, JsonLineProcess]:
    a, b = await asyncio.gather(pylibp2p(*args), pylibp2p(*args))
    assert (await a.call("dial", addr=b.addr))["peer_id"] == b.peer_id
    return a, b


async def test_pylibp2p_pair_direct_messages_both_ways_on_one_stream(pylibp2p: PeerFactory) -> None:
    a, b = await _pair(pylibp2p)
    channel = f"{a.peer_id}::dm:{b.peer_id}-misc"
    await a.call("send", peer_id=b.peer_id, channel=channel, payload=b64(b"hello b"))
    got = await b.next_event("dm")
    assert (got["peer_id"], got["channel"], unb64(got["payload"])) == (
        a.peer_id,
        channel,
        b"hello b",
    )
    assert got["stream"] == "inbound"
    # b answers on the stream a opened, and a reads it there (the Go nodes' rule)
    await b.call("send", peer_id=a.peer_id, channel="reply", payload=b64(b"\x00" * 70_000))
    back = await a.next_event("dm")
    assert (back["peer_id"], back["channel"], unb64(back["payload"])) == (
        b.peer_id,
        "reply",
        b"\x00" * 70_000,
    )
    assert back["stream"] == "outbound"


async def test_pylibp2p_pair_identify_and_ping(pylibp2p: PeerFactory) -> None:
    a, b = await _pair(pylibp2p)
    rec = await a.call("identify", peer_id=b.peer_id)
    assert rec["key_peer_id"] == b.peer_id
    assert {CHAT, "/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/meshsub/1.2.0"} <= set(rec["protocols"])
    assert rec["agent_version"].startswith("py-libp2p/")
    assert rec["listen_addrs"] == [b.addr.split("/p2p/")[0]]
    assert (await a.call("ping", peer_id=b.peer_id))["rtt_us"] > 0


async def test_pylibp2p_pair_gossipsub_both_ways(pylibp2p: PeerFactory) -> None:
    a, b = await _pair(pylibp2p)
    topic = f"{a.peer_id}::ps:news"
    await asyncio.gather(a.call("subscribe", topic=topic), b.call("subscribe", topic=topic))
    await _until_topic_peer(a, topic, b.peer_id)
    await _until_topic_peer(b, topic, a.peer_id)
    await a.call("publish", topic=topic, data=b64(b"from a"))
    # (py-libp2p also hands a publisher its own message: match on the source)
    got = await b.next_event("topic", source=a.peer_id)
    assert (got["topic"], got["source"], unb64(got["data"])) == (topic, a.peer_id, b"from a")
    await b.call("publish", topic=topic, data=b64(b"from b"))
    got = await a.next_event("topic", source=b.peer_id)
    assert unb64(got["data"]) == b"from b"


async def _until_topic_peer(p: JsonLineProcess, topic: str, peer: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while peer not in (await p.call("topic_peers", topic=topic))["peers"]:
            await asyncio.sleep(0.1)


async def test_pylibp2p_peer_loads_a_go_libp2p_key_file(pylibp2p: PeerFactory, tmp_path) -> None:
    expected = go_key_file(str(tmp_path / "key"))
    p = await pylibp2p("--key", str(tmp_path / "key"))
    assert p.peer_id == expected
    assert p.addr.endswith(f"/p2p/{expected}")


async def test_pylibp2p_peer_resets_the_stream_on_a_bad_frame(pylibp2p: PeerFactory) -> None:
    a, b = await _pair(pylibp2p)
    # channel length 9 in a frame whose total length is 5: the header alone is invalid
    await a.call("send_raw", peer_id=b.peer_id, data=b64(struct.pack(">IB", 5, 9) + b"abcd"))
    closed = await b.next_event("stream_closed", peer_id=a.peer_id)
    assert closed["reason"].startswith("bad_frame")
    # the connection survives; a fresh stream works
    await a.next_event("stream_closed", peer_id=b.peer_id)
    await a.call("send", peer_id=b.peer_id, channel="c", payload=b64(b"after"))
    assert unb64((await b.next_event("dm"))["payload"]) == b"after"


# --- our node (peerpool.mesh, in this process) against py-libp2p (its own process) ---------


async def _our_node(**kw: Any) -> MeshNode:
    node = MeshNode(Identity.generate(), **kw)
    await node.start()
    return node


async def _next(node: MeshNode, kind: type, timeout: float = 30.0, **match: Any) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            for ev in await node.next_events(timeout=timeout):
                if isinstance(ev, kind) and all(getattr(ev, k) == v for k, v in match.items()):
                    return ev


async def test_identify_and_ping_between_our_node_and_pylibp2p(pylibp2p: PeerFactory) -> None:
    py = await pylibp2p()
    node = await _our_node()
    try:
        info = await node.dial(py.addr)
        assert (info.peer_id, info.direction, info.relayed) == (py.peer_id, "outbound", False)
        await _until_py_sees(py, node.peer_id)
        # py-libp2p asks our node for its identify record on its own stream
        rec = await py.call("identify", peer_id=node.peer_id)
        assert rec["key_peer_id"] == node.peer_id
        assert {CHAT, "/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"} <= set(rec["protocols"])
        assert any(p.startswith("/meshsub/1.") for p in rec["protocols"])
        ours = {a.split("/p2p/")[0] for a in node.listen_addrs}
        assert set(rec["listen_addrs"]) & ours, (rec["listen_addrs"], ours)
        assert (await py.call("ping", peer_id=node.peer_id))["rtt_us"] > 0
        # and the other way round: py-libp2p dials us, we see it inbound
        py2 = await pylibp2p()
        await py2.call("dial", addr=node.listen_addrs[0])
        ev = await _connected(node, py2.peer_id)
        assert ev.info.direction == "inbound"
        assert node.is_connected(py.peer_id) and node.is_connected(py2.peer_id)
    finally:
        await node.stop()


async def _until_py_sees(py: JsonLineProcess, peer_id: str) -> None:
    """Our dial returns when our side is up; py-libp2p may still be upgrading its side."""
    async with asyncio.timeout(30):
        while peer_id not in (await py.call("peers"))["peers"]:
            await asyncio.sleep(0.05)


async def _connected(node: MeshNode, peer_id: str) -> PeerConnected:
    async with asyncio.timeout(30):
        while True:
            for ev in await node.next_events(timeout=30):
                if isinstance(ev, PeerConnected) and ev.info.peer_id == peer_id:
                    return ev


async def test_direct_messages_each_way_with_pylibp2p(pylibp2p: PeerFactory) -> None:
    py = await pylibp2p()
    node = await _our_node()
    try:
        # (1) py-libp2p opens the stream: our reply must come back on that same stream
        await py.call("dial", addr=node.listen_addrs[0])
        channel = f"{py.peer_id}::dm:{node.peer_id}-profile"
        await py.call("send", peer_id=node.peer_id, channel=channel, payload=b64(b"hi ours"))
        dm = await _next(node, DirectMessage)
        assert (dm.peer_id, dm.channel, dm.payload) == (py.peer_id, channel, b"hi ours")
        back = f"{node.peer_id}::dm:{py.peer_id}-profile"
        await node.send(py.peer_id, back, b"hi py" * 1000)
        got = await py.next_event("dm")
        assert (got["peer_id"], got["channel"], unb64(got["payload"])) == (
            node.peer_id,
            back,
            b"hi py" * 1000,
        )
        assert got["stream"] == "outbound", "our node answered on a stream of its own"
        # (2) our node opens the stream to a second py-libp2p peer, which answers on it
        py2 = await pylibp2p()
        await node.dial(py2.addr)
        await _until_py_sees(py2, node.peer_id)
        await node.send(py2.peer_id, "first", b"\x01\x02")
        got = await py2.next_event("dm")
        assert (got["peer_id"], got["channel"], unb64(got["payload"]), got["stream"]) == (
            node.peer_id,
            "first",
            b"\x01\x02",
            "inbound",
        )
        await py2.call(
            "send", peer_id=node.peer_id, channel="answer", payload=b64(b"\xff" * 300_000)
        )
        dm = await _next(node, DirectMessage, peer_id=py2.peer_id)
        assert (dm.channel, dm.payload) == ("answer", b"\xff" * 300_000)
    finally:
        await node.stop()


async def test_gossipsub_both_ways_with_pylibp2p(pylibp2p: PeerFactory) -> None:
    py = await pylibp2p()
    node = await _our_node(pubsub="gossipsub")
    try:
        topic = f"{node.peer_id}::ps:world"
        await node.subscribe(topic)
        await py.call("subscribe", topic=topic)
        await node.dial(py.addr)
        await _until_topic_peer(py, topic, node.peer_id)
        await py.call("publish", topic=topic, data=b64(b"from py-libp2p"))
        msg = await _next(node, TopicMessage)
        assert (msg.topic, msg.source, msg.via, msg.data) == (
            topic,
            py.peer_id,
            py.peer_id,
            b"from py-libp2p",
        )
        await _publish_until_delivered(node, py, topic, b"from ours")
    finally:
        await node.stop()


async def test_floodsub_both_ways_with_pylibp2p(pylibp2p: PeerFactory) -> None:
    """py-libp2p's FloodSub router (only /floodsub/1.0.0, strict signing: it verifies our
    signature and drops unsigned messages) and our floodsub node, messages both ways,
    one of them larger than rust-libp2p's floodsub crate could carry (2,048 bytes)."""
    py = await pylibp2p("--pubsub", "floodsub")
    node = await _our_node(pubsub="floodsub")
    try:
        topic = f"{node.peer_id}::ps:world"
        await node.subscribe(topic)
        await py.call("subscribe", topic=topic)
        await node.dial(py.addr)
        await _until_topic_peer(py, topic, node.peer_id)
        await py.call("publish", topic=topic, data=b64(b"from py-libp2p floodsub"))
        msg = await _next(node, TopicMessage)
        # source: the author whose signature our node verified (strict validation)
        assert (msg.topic, msg.source, msg.via, msg.data) == (
            topic,
            py.peer_id,
            py.peer_id,
            b"from py-libp2p floodsub",
        )
        await _publish_until_delivered(node, py, topic, b"from ours")
        await _publish_until_delivered(node, py, topic, bytes(range(256)) * 200)  # 51,200 bytes
    finally:
        await node.stop()


async def _publish_until_delivered(
    node: MeshNode, py: JsonLineProcess, topic: str, data: bytes
) -> None:
    """Publish (again, if our node did not yet know py's subscription) until py gets it."""
    async with asyncio.timeout(30):
        while True:
            with contextlib.suppress(MeshError):
                await node.publish(topic, data)
            try:
                got = await py.next_event("topic", timeout=2, source=node.peer_id)
            except TimeoutError:
                continue
            assert (got["topic"], unb64(got["data"])) == (topic, data)
            return
