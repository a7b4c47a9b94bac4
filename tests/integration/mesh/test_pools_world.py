"""A world node and agents on our mesh nodes: two agents in a second process, one here.

The world node (this process) approves the agents, routes them into its world
pools, publishes the rendezvous roster until every agent has applied it, and
talks to them by role; agents message each other and the world, and all get
the world's topic. A roster from an agent, and an old one from the world, are
ignored and counted. A stranger on the world network is disconnected. The
agents' process is killed: the world node's and the local agent's pools drop
them at the next update().
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peerpool.mesh import Identity, MeshNode
from peerpool.mesh.nodeconn import NodeConn
from peerpool.mesh.rendezvous import rendezvous_topic
from tests.integration.mesh.pools_procs import ChildProc, eventually
from tests.mesh.keys import keypair, mint

pytestmark = pytest.mark.timeout(180)

AGENT, TEACHER = 1, 1 | 4


async def test_world_node_and_agents(tmp_path: Path) -> None:
    pem = keypair("RS256")[1].decode()
    wu, ww = MeshNode(pubsub="gossipsub"), MeshNode(pubsub="floodsub")
    cu, cw = MeshNode(pubsub="gossipsub"), MeshNode(pubsub="floodsub")
    for n in (wu, ww, cu, cw):
        await n.start()
    world = NodeConn(40, wu, ww, True, pem, mint(peers=[ww.peer_id, wu.peer_id], node_id="world"))
    local = NodeConn(
        20, cu, cw, False, pem, mint(peers=[cw.peer_id, cu.peer_id], node_id="agent-c")
    )

    # the child agents' identities are made here, so the world can approve them before they dial
    specs, child_ids = [], []
    for i in range(2):
        ku, kw = Identity.generate(), Identity.generate()
        ku.save(tmp_path / f"u{i}.key")
        kw.save(tmp_path / f"w{i}.key")
        token = mint(peers=[kw.peer_id, ku.peer_id], node_id=f"agent-{i}")
        specs.append(
            {
                "public_key": str(tmp_path / f"u{i}.key"),
                "world_key": str(tmp_path / f"w{i}.key"),
                "token": token,
            }
        )
        child_ids.append(kw.peer_id)
    a_id, b_id = child_ids
    world.add_to_world_agents_list(a_id, [], AGENT)
    world.add_to_world_agents_list(b_id, [], TEACHER)
    world.add_to_world_agents_list(cw.peer_id, cw.listen_addrs, AGENT)

    child = ChildProc(
        "tests.integration.mesh.pools_agents_proc",
        {
            "agents": specs,
            "public_key_pem": pem,
            "world": {"peer_id": ww.peer_id, "world_addrs": ww.listen_addrs},
        },
    )
    stranger = ChildProc("peerpool.mesh.proc", {"nodes": 1, "pubsub": "floodsub"})
    try:
        await child.start()
        for r, role in zip(child.ready, (AGENT, TEACHER), strict=True):
            world.add_to_world_agents_list(r["world_id"], r["world_addrs"], role)
        local.set_world(ww.peer_id)
        assert (await local.connect(ww.listen_addrs, NodeConn.P2P_WORLD))[0] == ww.peer_id
        assert (await local.connect(wu.listen_addrs, NodeConn.P2P_PUBLIC))[0] == wu.peer_id

        async def world_has_everyone() -> bool:
            await world.update()
            await local.update()
            # both networks: the public connection's event may come a turn later
            return world.get_pool_status()[NodeConn.IN_WORLD_AGENTS] == {
                a_id,
                b_id,
                cw.peer_id,
            } and world.is_public(cu.peer_id)

        await eventually(world_has_everyone, 30)
        assert world.is_public(cu.peer_id) and world.get_pool_of(cu.peer_id) == NodeConn.IN_PUBLIC
        assert local.get_pool_of(ww.peer_id) == NodeConn.OUT_WORLD_NODE
        assert local.get_pool_of(wu.peer_id) == NodeConn.OUT_PUBLIC

        # a stranger on the world network fits no pool and is dropped
        await stranger.start()
        await stranger.call("dial", addrs=ww.listen_addrs)

        async def stranger_dropped() -> bool:
            await world.update()
            return world.stats["unroutable"] >= 1 and not ww.is_connected(
                stranger.ready[0]["peer_id"]
            )

        await eventually(stranger_dropped, 20)

        # the roster, published until every agent applied it (floodsub needs their subscriptions first)
        async def roster_applied() -> bool:
            await world.publish_rendezvous()
            await local.update()
            await local.set_world_agents_and_world_masters_lists_from_rendezvous()
            status = await child.call("status")
            return local.rendezvous_tag >= 1 and all(s["rendezvous_tag"] >= 1 for s in status)

        await eventually(roster_applied, 40, every=0.3)
        status = await child.call("status")
        for s in status:
            assert set(s["world_agents"]) == {a_id, b_id, cw.peer_id}
            assert s["roles"][b_id] == TEACHER
        assert (
            local.get_role(b_id) == TEACHER
            and local.get_addrs(a_id) == child.ready[0]["world_addrs"]
        )

        # by role: the world finds the teacher and tells only it
        _addrs, ids = world.find_addrs_by_role(
            TEACHER, return_peer_ids_too=True, discard_yourself=True
        )
        assert ids == [b_id] and world.count_by_role(AGENT) == 2
        assert await world.send(b_id, None, "role_suggestion", {"role": "teacher"})
        # agent A (other process) to the world, agent C (here) dials A and messages it
        assert await child.call(
            "send", agent=0, to=ww.peer_id, content_type="profile", content={"name": "A"}
        )
        peer, relayed = await local.connect(local.get_addrs(a_id) or [], NodeConn.P2P_WORLD)
        assert (peer, relayed) == (a_id, False)
        assert local.get_pool_of(a_id) == NodeConn.OUT_WORLD_AGENTS
        assert await local.send(a_id, "t1", "misc", {"hello": "A"})

        # the world's topic reaches the agents of both processes
        topic = f"{ww.peer_id}::ps:news"
        assert await local.subscribe(ww.peer_id, topic)
        for i in range(2):
            assert await child.call("subscribe", agent=i, owner=ww.peer_id, topic=topic)
        world_got: list[Any] = []
        local_got: list[Any] = []

        async def delivered() -> bool:
            await world.publish(ww.peer_id, topic, "misc", {"news": 1})
            world_got.extend(await world.get_messages(NodeConn.P2P_WORLD))
            local_got.extend(await local.get_messages(NodeConn.P2P_WORLD))
            status = await child.call("status")
            topics = [any(m["channel"] == topic for m in s["received"]) for s in status]
            return all(topics) and any(m.channel == topic for m in local_got) and bool(world_got)

        await eventually(delivered, 40, every=0.3)
        status = await child.call("status")
        a_got, b_got = status[0]["received"], status[1]["received"]
        assert any(m["sender"] == cw.peer_id and m["content"] == {"hello": "A"} for m in a_got)
        assert any(
            m["content_type"] == "role_suggestion" and m["piggyback"] == "world0" for m in b_got
        )
        assert not any(m["content_type"] == "role_suggestion" for m in a_got)
        assert [m.content for m in world_got if m.content_type == "profile"] == [{"name": "A"}]
        assert world_got[0].piggyback == "agent-00" and world_got[0].sender == a_id

        # a roster from an agent, and an old one from the world: both ignored and counted
        fake = json.dumps({"update_count": 10_000, "peers": []}).encode()
        stale = json.dumps({"update_count": 0, "peers": []}).encode()

        async def ignored() -> bool:
            await cw.publish(rendezvous_topic(ww.peer_id), fake)
            await ww.publish(rendezvous_topic(ww.peer_id), stale)
            status = await child.call("status")
            return all(
                s["stats"].get("roster_foreign", 0) >= 1 and s["stats"].get("roster_stale", 0) >= 1
                for s in status
            )

        await eventually(ignored, 30, every=0.3)
        status = await child.call("status")
        assert all(set(s["world_agents"]) == {a_id, b_id, cw.peer_id} for s in status)

        # the agents' process dies: both pools drop them
        child.kill()

        removed: set[str] = set()
        local_removed: set[str] = set()

        async def dropped() -> bool:
            removed.update(*(await world.update())[1].values())
            local_removed.update(*(await local.update())[1].values())
            return {a_id, b_id} <= removed and a_id in local_removed

        await eventually(dropped, 30)
        assert world.get_pool_status()[NodeConn.IN_WORLD_AGENTS] == {cw.peer_id}
        assert not local.is_connected(a_id) and local.is_connected(ww.peer_id)
    finally:
        child.kill()
        await child.stop()
        await stranger.stop()
        for n in (wu, ww, cu, cw):
            await n.stop()
