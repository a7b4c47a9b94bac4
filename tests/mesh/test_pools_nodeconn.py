"""NodeConn over two P2P doubles: ratios, world routing, roles, and the rendezvous roster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from peerpool.errors import RoleError
from peerpool.mesh.messages import Msg
from peerpool.mesh.nodeconn import NodeConn
from peerpool.mesh.rendezvous import parse_roster, rendezvous_topic
from tests.mesh.fake_p2p import FakeP2P, fake_peer_id
from tests.mesh.keys import keypair, mint

AGENT, MASTER = 1, 3


def make(
    is_world_node: bool = False, max_connections: int = 40
) -> tuple[NodeConn, FakeP2P, FakeP2P]:
    pu, pw = FakeP2P(), FakeP2P()
    conn = NodeConn(
        max_connections,
        pu,
        pw,
        is_world_node,
        keypair("RS256")[1],
        mint(peers=[pw.peer_id]),
        reconcile_interval=0.0,
    )
    return conn, pu, pw


def test_ratios_of_an_agent_and_of_a_world_node() -> None:
    agent, *_ = make(False, 40)
    cap = {p: agent.capacity(p) for p in agent.pool_names}
    assert cap[NodeConn.IN_PUBLIC] == cap[NodeConn.OUT_PUBLIC] == 5
    assert cap[NodeConn.IN_WORLD_AGENTS] == 15 and cap[NodeConn.OUT_WORLD_AGENTS] == 15
    assert cap[NodeConn.IN_WORLD_MASTERS] == cap[NodeConn.OUT_WORLD_MASTERS] == 0  # disabled
    assert cap[NodeConn.IN_WORLD_NODE] is None  # overflow: see the NodeConn docstring
    world, *_ = make(True, 40)
    cap = {p: world.capacity(p) for p in world.pool_names}
    assert (
        cap[NodeConn.IN_PUBLIC],
        cap[NodeConn.IN_WORLD_AGENTS],
        cap[NodeConn.IN_WORLD_MASTERS],
    ) == (5, 10, 5)
    assert cap[NodeConn.OUT_WORLD_MASTERS] == 5
    assert cap[NodeConn.IN_WORLD_NODE] is None and cap[NodeConn.OUT_WORLD_NODE] is None
    assert sum(c for c in cap.values() if c is not None) == 40
    assert NodeConn.ALL == NodeConn.PUBLIC | NodeConn.WORLD
    assert NodeConn.INCOMING | NodeConn.OUTGOING == NodeConn.ALL
    assert not NodeConn.INCOMING & NodeConn.OUTGOING


async def test_world_routing_by_sets() -> None:
    conn, pu, pw = make(True)
    agent, master, inspector, stranger = (fake_peer_id(t) for t in "AMIS")
    conn.add_to_world_agents_list(agent, ["/ip4/127.0.0.1/tcp/1"], AGENT)
    conn.add_to_world_masters_list(master, ["/ip4/127.0.0.1/tcp/2"], MASTER)
    conn.set_inspector(inspector)
    public = pu.connect_peer(direction="outbound").peer_id
    for pid in (agent, master, inspector, stranger):
        pw.connect_peer(pid)
    added, _ = await conn.update()
    assert added[NodeConn.OUT_PUBLIC] == {public}
    assert added[NodeConn.IN_WORLD_AGENTS] == {agent}
    assert added[NodeConn.IN_WORLD_MASTERS] == {master, inspector}
    assert stranger in pw.disconnected and conn.stats["unroutable"] == 1
    assert conn.is_public(public) and conn.is_in_world(agent) and conn.is_world_master(master)
    assert conn.in_connection_queues(agent) and not conn.in_connection_queues(stranger)
    assert conn.get_first_world_master() == master
    assert conn.size([NodeConn.IN_WORLD_MASTERS]) == 2 and conn.size() == 4
    assert conn.is_connected(agent, [NodeConn.IN_WORLD_AGENTS]) and not conn.is_connected(
        agent, NodeConn.PUBLIC
    )
    assert {i["id"] for i in conn.get_all_connected_peer_infos(NodeConn.WORLD)} == {
        agent,
        master,
        inspector,
    }
    assert conn.get_added_after_updating([NodeConn.OUT_PUBLIC]) == {NodeConn.OUT_PUBLIC: {public}}


async def test_agent_keeps_its_world_node() -> None:
    conn, _pu, pw = make(False)
    world = fake_peer_id("W")
    conn.set_world(world)
    pw.connect_peer(world, direction="outbound")
    added, _ = await conn.update()
    assert added[NodeConn.OUT_WORLD_NODE] == {world} and conn.is_world_node(world)
    assert rendezvous_topic(world) in pw.subscribed


def test_roles() -> None:
    conn, _pu, pw = make()
    a, b = fake_peer_id(), fake_peer_id()
    conn.add_to_world_agents_list(a, ["/a"], AGENT | 4)
    conn.add_to_world_agents_list(b, ["/b"], AGENT | 4)
    conn.add_to_world_agents_list(pw.peer_id, ["/me"], AGENT | 4)
    assert conn.get_role(a) == 5 and conn.count_by_role(5) == 3
    assert conn.find_addrs_by_role(5, discard_yourself=True) == [
        ["/a"],
        ["/b"],
    ] or conn.find_addrs_by_role(5, discard_yourself=True) == [["/b"], ["/a"]]
    addrs, ids = conn.find_addrs_by_role(5, return_peer_ids_too=True)
    assert set(ids) == {a, b, pw.peer_id} and len(addrs) == 3
    conn.set_role(a, AGENT | 8)
    assert conn.role_to_peer_ids[9] == {a} and conn.count_by_role(5) == 2
    assert conn.find_addrs_by_role(123) == [] and conn.find_addrs_by_role(123, True) == ([], [])
    assert conn.get_role(fake_peer_id()) == 0
    with pytest.raises(RoleError):
        conn.add_to_world_agents_list(fake_peer_id(), [], MASTER)
    with pytest.raises(RoleError):
        conn.add_to_world_masters_list(fake_peer_id(), [], AGENT)
    with pytest.raises(RoleError):
        conn.set_role(a, 4)  # a non-public role without the world bit
    # replacing the list drops the old agents' roles and addresses, empty role sets pruned
    conn.set_world_agents_list([{"id": b, "addrs": ["/b2"], "misc": AGENT}])
    assert conn.get_role(a) == 0 and conn.get_addrs(a) is None and conn.get_addrs(b) == ["/b2"]
    assert 9 not in conn.role_to_peer_ids and conn.world_agents_list == {b}


async def test_roster_only_from_world_node_and_only_newer() -> None:
    conn, _pu, pw = make(False)
    world = fake_peer_id("W")
    conn.set_world(world)
    topic = rendezvous_topic(world)
    a, m = fake_peer_id("A"), fake_peer_id("M")

    def roster(count: int, peers: list[dict[str, Any]]) -> bytes:
        return json.dumps({"update_count": count, "peers": peers}).encode()

    pw.deliver_topic(topic, world, roster(3, [{"id": a, "addrs": ["/a"], "misc": AGENT}]))
    await conn.set_world_agents_and_world_masters_lists_from_rendezvous()
    assert conn.world_agents_list == {a} and conn.rendezvous_tag == 3
    # stale, foreign and garbage rosters are ignored and counted
    pw.deliver_topic(topic, world, roster(2, [{"id": m, "addrs": [], "misc": MASTER}]))
    pw.deliver_topic(topic, fake_peer_id(), roster(9, [{"id": m, "addrs": [], "misc": MASTER}]))
    pw.deliver_topic(topic, world, b"{not json")
    await conn.set_world_agents_and_world_masters_lists_from_rendezvous()
    assert conn.world_masters_list == set() and conn.rendezvous_tag == 3
    assert (conn.stats["roster_stale"], conn.stats["roster_foreign"], conn.stats["roster_bad"]) == (
        1,
        1,
        1,
    )
    # a newer one, wrapped in a Msg from the world node, promotes a to master
    wrapped = Msg(
        world, content={"update_count": 4, "peers": [{"id": a, "addrs": ["/a"], "misc": MASTER}]}
    )
    pw.deliver_topic(topic, world, wrapped.to_bytes())
    assert await conn.get_messages(NodeConn.P2P_WORLD) == []  # roster events are not messages
    await conn.set_world_agents_and_world_masters_lists_from_rendezvous()
    assert conn.world_masters_list == {a} and conn.world_agents_list == set()
    conn.reset_rendezvous_tag()
    pw.deliver_topic(topic, world, roster(0, []))
    await conn.set_world_agents_and_world_masters_lists_from_rendezvous()
    assert conn.rendezvous_tag == 0 and conn.world_masters_list == set()


async def test_roster_change_reroutes_connected_world_peers() -> None:
    conn, _pu, pw = make(True)
    a = fake_peer_id("A")
    conn.add_to_world_agents_list(a, ["/a"], AGENT)
    pw.connect_peer(a)
    await conn.update()
    assert conn.get_pool_of(a) == NodeConn.IN_WORLD_AGENTS
    conn.set_world_agents_list([])
    conn.set_world_masters_list([{"id": a, "addrs": ["/a"], "misc": MASTER}])
    added, removed = await conn.update()
    assert removed[NodeConn.IN_WORLD_AGENTS] == {a} and added[NodeConn.IN_WORLD_MASTERS] == {a}
    conn.set_world_masters_list([])
    await conn.update()
    assert a in pw.disconnected  # no longer in the world


async def test_world_node_publishes_its_roster() -> None:
    conn, _pu, pw = make(True)
    a, m = fake_peer_id("A"), fake_peer_id("M")
    conn.add_to_world_agents_list(a, ["/ip4/127.0.0.1/tcp/1"], AGENT | 4)
    conn.add_to_world_masters_list(m, ["/ip4/127.0.0.1/tcp/2"], MASTER)
    pw.connect_peer(a)
    pw.connect_peer(m, direction="outbound")
    await conn.update()
    first = await conn.publish_rendezvous()
    second = await conn.publish_rendezvous()
    assert (
        first is not None and second is not None and second.update_count == first.update_count + 1
    )
    topic, data = pw.published[-1]
    assert topic == rendezvous_topic(pw.peer_id)
    parsed = parse_roster(data, pw.peer_id)
    assert {(p["id"], p["misc"]) for p in parsed.peers} == {(a, 5), (m, 3)}


async def test_remove_all_world_agents_and_token_helpers() -> None:
    conn, _pu, pw = make(True)
    a = fake_peer_id("A")
    conn.add_to_world_agents_list(a, ["/a"], AGENT)
    pw.connect_peer(a)
    token = mint(peers=[a], cv_hash="cv-42")
    pw.deliver(a, Msg(a, content=1, piggyback=token + "1").to_bytes())
    msgs = await conn.get_messages(NodeConn.P2P_WORLD)
    assert [m.piggyback for m in msgs] == ["node-11"]  # inspector bit kept
    assert await conn.get_cv_hash_from_last_token(a) == "cv-42"
    conn.set_addresses_in_peer_info(a, ["/new"])
    info = conn.get_all_connected_peer_infos([NodeConn.IN_WORLD_AGENTS])[0]
    assert info["addrs"] == ["/new"]
    await conn.remove_all_world_agents()
    assert a in pw.disconnected and conn.size() == 0
    assert conn.get_role(a) == 0 and conn.world_agents_list == set()
    assert await conn.get_cv_hash_from_last_token(a) is None


async def test_listed_but_unconnected_world_agents_may_message() -> None:
    conn, _pu, pw = make(True)
    a = fake_peer_id("A")
    conn.add_to_world_agents_list(a, ["/a"], AGENT)
    pw.deliver(a, Msg(a, content=1, piggyback=mint(peers=[a]) + "0").to_bytes())
    assert len(await conn.get_messages(NodeConn.P2P_WORLD)) == 1


async def test_public_roles_do_not_outlive_the_peer() -> None:
    conn, pu, _pw = make()
    p = pu.connect_peer().peer_id
    await conn.update()
    conn.set_role(p, 0b101)
    pu.drop_peer(p)
    await conn.update()
    assert p not in conn.peer_id_to_misc and not conn.role_to_peer_ids
