"""ConnectionPools over a P2P double: routing, update() sets, full pools, messages, sends."""

from __future__ import annotations

from typing import Any

import pytest

from peerpool.errors import PoolConfigError
from peerpool.mesh import acceptance, tokens
from peerpool.mesh.messages import Msg
from peerpool.mesh.pools import ConnectionPools
from tests.mesh.fake_p2p import FakeP2P, fake_peer_id
from tests.mesh.keys import keypair, mint


class ByDirection:
    def route(self, network: str, peer_id: str, info: dict[str, Any]) -> str | None:
        if peer_id.endswith("BANNED"):
            return None
        return "in" if info["direction"] == "incoming" else "out"


def make(max_connections: int = 4, **kw: Any) -> tuple[ConnectionPools, FakeP2P]:
    p2p = FakeP2P()
    pools = ConnectionPools(
        max_connections,
        {"in": ["net", 0.5], "out": ["net", 0.5]},
        {"net": p2p},
        public_key=keypair("RS256")[1],
        token=mint(peers=[p2p.peer_id]),
        policy=ByDirection(),
        **{"reconcile_interval": 0.0, **kw},
    )
    return pools, p2p


def msg_from(sender: str, token: str | None = None, **kw: Any) -> bytes:
    token = mint(peers=[sender]) if token is None else token
    return Msg(sender, content={"hi": 1}, piggyback=token + "0", **kw).to_bytes()


def test_no_routing_is_a_config_error() -> None:
    with pytest.raises(PoolConfigError):
        ConnectionPools(2, {"a": ["net", 1.0]}, {"net": FakeP2P()})


async def test_update_reports_added_and_removed_per_pool() -> None:
    pools, p2p = make()
    a = p2p.connect_peer(direction="inbound").peer_id
    b = p2p.connect_peer(direction="outbound").peer_id
    added, removed = await pools.update()
    assert added == {"in": {a}, "out": {b}} and removed == {"in": set(), "out": set()}
    assert pools.get_pool_status() == {"in": {a}, "out": {b}}
    assert pools.get_added_after_updating("in") == {a}
    p2p.drop_peer(a)
    added, removed = await pools.update()
    assert added == {"in": set(), "out": set()} and removed == {"in": {a}, "out": set()}
    assert pools.get_removed_after_updating() == removed
    assert not pools.is_connected(a) and pools.is_connected(b, "out")
    assert pools.get_pool_of(b) == "out" and pools.size() == 1 and pools.size("in") == 0


async def test_gone_without_event_is_still_reconciled() -> None:
    pools, p2p = make()
    a = p2p.connect_peer().peer_id
    await pools.update()
    p2p.drop_peer(a, event=False)  # the live view lost it: update() must notice anyway
    _, removed = await pools.update()
    assert removed["in"] == {a}


async def test_direction_change_is_removed_and_added() -> None:
    pools, p2p = make()
    a = p2p.connect_peer(direction="inbound").peer_id
    await pools.update()
    p2p.change_direction(a, "outbound")
    added, removed = await pools.update()
    assert removed["in"] == {a} and added["out"] == {a}
    assert pools.get_pool_of(a) == "out"


async def test_full_pool_is_reported_and_peer_dropped() -> None:
    pools, p2p = make(max_connections=2)  # one slot in each pool
    first = p2p.connect_peer().peer_id
    second = p2p.connect_peer().peer_id
    added, _ = await pools.update()
    assert added["in"] == {first}
    assert pools.get_rejected_after_updating("in") == {second}
    assert pools.stats["pool_full"] == 1
    assert second in p2p.disconnected and not p2p.is_connected(second)
    # not reported again on the next cycle (it is gone)
    await pools.update()
    assert pools.get_rejected_after_updating("in") == set() and pools.stats["pool_full"] == 1


async def test_unroutable_peer_is_disconnected_and_counted() -> None:
    pools, p2p = make()
    bad = p2p.connect_peer(fake_peer_id() + "BANNED").peer_id
    await pools.update()
    assert bad in p2p.disconnected and pools.stats["unroutable"] == 1
    assert not pools._pools._rejected["net"]  # pruned once it is gone


async def test_peer_is_in_its_pool_on_connect_before_its_first_message() -> None:
    pools, p2p = make()
    a = p2p.connect_peer().peer_id
    p2p.deliver(a, msg_from(a))  # connected and sent at once, no update() in between
    msgs = await pools.get_messages("net")
    assert [m.sender for m in msgs] == [a]
    assert pools.get_pool_of(a) == "in"
    assert msgs[0].piggyback == "node-10"  # node id + inspector bit replace the token
    assert pools.get_last_token(a) is not None
    assert pools.passed_time_since_last_communication(a) is not None


async def test_subclass_routing_hook() -> None:
    class Everyone(ConnectionPools):
        async def conn_routing_fcn(self, connected_peer_infos: list, p2p: Any) -> dict:
            return {"all": {i["id"]: i for i in connected_peer_infos}}

    p2p = FakeP2P()
    pools = Everyone(3, {"all": ["net", 1.0]}, {"net": p2p})
    ids = {p2p.connect_peer(direction=d).peer_id for d in ("inbound", "outbound")}
    added, _ = await pools.update()
    assert added == {"all": ids}
    info = pools.get_all_connected_peer_infos("all")[0]
    assert set(info) == {"id", "addrs", "direction", "connected_at", "relayed", "misc"}
    assert info["misc"] == 0 and info["direction"] in ("incoming", "outgoing")


async def test_message_rejections_each_counted() -> None:
    pools, p2p = make(max_connections=20)
    a, b = p2p.connect_peer().peer_id, p2p.connect_peer().peer_id
    outsider = fake_peer_id()
    await pools.update()
    p2p.deliver(a, msg_from(a, mint(peers=[a], ttl=-5)))  # expired
    p2p.deliver(a, msg_from(a, mint(peers=[b])))  # bound to another peer
    p2p.deliver(a, msg_from(a, mint(peers=[a], ttl=None)))  # no exp
    p2p.deliver(a, Msg(a, content=1, piggyback="").to_bytes())  # no token
    p2p.deliver(outsider, msg_from(outsider))  # not in a pool
    p2p.deliver(b, msg_from(a))  # b claims to be a
    assert await pools.get_messages("net") == []
    assert pools.rejections == {
        tokens.EXPIRED: 1,
        tokens.WRONG_PEER: 1,
        tokens.MISSING_EXP: 1,
        tokens.NO_TOKEN: 1,
        acceptance.NOT_IN_POOL: 1,
        acceptance.SENDER_MISMATCH: 1,
    }
    assert b in p2p.disconnected and a not in p2p.disconnected  # spoofing is misbehaviour
    # allowed-but-not-connected senders pass
    p2p.deliver(outsider, msg_from(outsider))
    assert len(await pools.get_messages("net", allowed_not_connected_peers={outsider})) == 1


async def test_garbage_from_a_direct_peer_disconnects_it() -> None:
    pools, p2p = make()
    a = p2p.connect_peer().peer_id
    p2p.deliver(a, b"\xff\xff\xff")
    assert await pools.get_messages("net") == []
    assert pools.rejections[acceptance.BAD_MESSAGE] == 1 and a in p2p.disconnected


async def test_topic_messages_use_the_signed_author() -> None:
    pools, p2p = make()
    a = p2p.connect_peer().peer_id
    await pools.update()
    p2p.deliver_topic("t", a, msg_from(a), via=fake_peer_id())
    p2p.deliver_topic("t", None, msg_from(a))
    msgs = await pools.get_messages("net")
    assert [m.sender for m in msgs] == [a]
    assert pools.rejections[acceptance.UNSIGNED] == 1


async def test_inbox_is_bounded_and_pushes_back() -> None:
    pools, p2p = make(inbox_size=5)
    a = p2p.connect_peer().peer_id
    token = mint(peers=[a])
    for _ in range(12):
        p2p.deliver(a, msg_from(a, token))
    await pools.update()
    assert len(p2p.events) == 12 + 1 - 6  # connect + 5 messages read, the rest wait in the node
    assert pools.stats["inbox_full"] >= 1
    got = []
    for _ in range(3):
        got += await pools.get_messages("net")
    assert len(got) == 12
    assert (
        pools._verifier is not None and pools._verifier.verifications == 1
    )  # one token, one check


async def test_no_per_peer_state_after_peers_leave() -> None:
    pools, p2p = make(max_connections=200)
    peers = [p2p.connect_peer().peer_id for _ in range(50)]
    for pid in peers:
        p2p.deliver(pid, msg_from(pid))
    assert len(await pools.get_messages("net")) == 50
    for pid in peers:
        p2p.drop_peer(pid)
    await pools.update()
    assert pools.size() == 0
    assert not pools._last_token and not pools._last_seen
    assert pools._verifier is not None and len(pools._verifier) == 0
    assert not pools._pools.tracked("net") and not pools._pools._pool_of


async def test_remove_disconnects_and_keeps_misc() -> None:
    pools, p2p = make()
    a = p2p.connect_peer().peer_id
    await pools.update()
    pools.peer_id_to_misc[a] = 5
    assert await pools.remove(a)
    assert a in p2p.disconnected and not pools.is_connected(a)
    assert pools.peer_id_to_misc[a] == 5
    assert not await pools.remove(a)


async def test_send_publish_subscribe() -> None:
    pools, p2p = make()
    a = p2p.connect_peer().peer_id
    await pools.update()
    assert await pools.send(a, "trail", "profile", {"x": 1})
    (to, channel, payload) = p2p.sent[-1]
    assert to == a and channel == f"{p2p.peer_id}::dm:{a}-profile~trail"
    sent = Msg.from_bytes(payload)
    assert sent.sender == p2p.peer_id and sent.content == {"x": 1} and sent.channel == channel
    assert sent.piggyback.endswith("0") and sent.piggyback[:-1] == pools._token
    assert await pools.send(a, None, "misc", None)
    assert p2p.sent[-1][1] == f"{p2p.peer_id}::dm:{a}-misc"
    assert not await pools.send(fake_peer_id(), None, "misc")  # in no pool
    topic = f"{p2p.peer_id}::ps:news"
    assert await pools.subscribe(p2p.peer_id, topic) and topic in p2p.subscribed
    assert await pools.publish(p2p.peer_id, topic, "misc", [1])
    assert Msg.from_bytes(p2p.published[-1][1]).channel == topic
    assert await pools.unsubscribe(p2p.peer_id, topic) and topic not in p2p.subscribed
    assert not await pools.subscribe(fake_peer_id(), "x")


async def test_connect_keeps_loopback_and_prefers_quic() -> None:
    pools, p2p = make()
    target = fake_peer_id()
    tcp = f"/ip4/127.0.0.1/tcp/4001/p2p/{target}"
    quic = f"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/{target}"
    p2p.dialable[tcp] = target
    peer_id, relayed = await pools.connect([tcp, quic, tcp], "net")
    assert (peer_id, relayed) == (target, False)
    assert p2p.dialed[-1] == [quic, tcp]
    assert pools.get_pool_of(target) == "out"  # in its pool right away
    assert await pools.connect(["/ip4/127.0.0.1/tcp/9/p2p/x"], "net") == (None, False)
    assert await pools.connect([], "net") == (None, False)
    assert await pools.reserve(target, "net") is not None


async def test_verify_token_and_dropped_counter() -> None:
    pools, p2p = make()
    a = fake_peer_id()
    assert await pools.verify_token(mint(peers=[a]), a) == ("node-1", "cv-abc")
    assert await pools.verify_token(mint(peers=[a]), "someone") == (None, None)
    from tests.mesh.fake_p2p import MessagesDropped

    p2p.events.append(MessagesDropped("frame_too_large", a, 3))
    await pools.update()
    assert pools.stats["node_dropped:frame_too_large"] == 3


async def test_added_by_hand_but_not_live_is_dropped_at_update() -> None:
    pools, p2p = make()
    ghost = fake_peer_id()
    assert pools.add({"id": ghost, "addrs": [], "direction": "incoming"}, "in")
    assert pools.is_connected(ghost)
    _, removed = await pools.update()
    assert removed["in"] == {ghost} and not pools.is_connected(ghost)
    live = p2p.connect_peer(event=False).peer_id
    assert pools.add({"id": live, "addrs": [], "direction": "outgoing"}, "out")
    added, removed = await pools.update()
    # it is live but inbound: the routing moves it to its pool
    assert removed["out"] == {live} and added["in"] == {live}


async def test_between_full_reconciles_update_follows_the_events() -> None:
    pools, p2p = make(reconcile_interval=3600.0)
    a = p2p.connect_peer(direction="inbound").peer_id
    added, _ = await pools.update()  # the first update is a full one
    assert added["in"] == {a}
    b = p2p.connect_peer().peer_id
    p2p.change_direction(a, "outbound")  # no event for this
    added, removed = await pools.update()
    assert added["in"] == {b} and removed["in"] == set()  # from the event only
    p2p.drop_peer(b)
    assert (await pools.update())[1]["in"] == {b}
    added, removed = await pools.update(full=True)
    assert removed["in"] == {a} and added["out"] == {a}
