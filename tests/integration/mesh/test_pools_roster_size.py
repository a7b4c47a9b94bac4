"""A rendezvous roster of 100 world agents, published over floodsub and applied by an agent.

The roster names every connected world agent with its addresses and role: about
190 bytes a peer, so 100 peers make some 19 KB, where rust-libp2p's floodsub crate
(2,048-byte RPCs) stopped at about a dozen. The world node and one agent (NodeConn)
run here; 99 more world agents are plain mesh nodes in a child process.
"""

from __future__ import annotations

import asyncio

import pytest

from peerpool.mesh import MeshNode
from peerpool.mesh.nodeconn import NodeConn
from tests.integration.mesh.pools_procs import ChildProc, eventually
from tests.mesh.keys import keypair, mint

pytestmark = pytest.mark.timeout(240)

AGENT = 1
OTHERS = 99


async def test_roster_of_100_world_agents_over_floodsub() -> None:
    pem = keypair("RS256")[1].decode()
    wu, ww = MeshNode(pubsub="gossipsub"), MeshNode(pubsub="floodsub")
    cu, cw = MeshNode(pubsub="gossipsub"), MeshNode(pubsub="floodsub")
    for n in (wu, ww, cu, cw):
        await n.start()
    world = NodeConn(1000, wu, ww, True, pem, mint(peers=[ww.peer_id, wu.peer_id], node_id="w"))
    local = NodeConn(20, cu, cw, False, pem, mint(peers=[cw.peer_id, cu.peer_id], node_id="c"))
    others = ChildProc("peerpool.mesh.proc", {"nodes": OTHERS, "pubsub": "floodsub"})
    try:
        await others.start(timeout=120)
        world.add_to_world_agents_list(cw.peer_id, cw.listen_addrs, AGENT)
        for r in others.ready:
            world.add_to_world_agents_list(r["peer_id"], r["addrs"], AGENT)
        expected = {cw.peer_id} | {r["peer_id"] for r in others.ready}
        await asyncio.gather(
            *(others.call("dial", node=i, addrs=ww.listen_addrs) for i in range(OTHERS))
        )
        local.set_world(ww.peer_id)
        await local.connect(ww.listen_addrs, NodeConn.P2P_WORLD)

        async def all_in_world() -> bool:
            await world.update()
            await local.update()
            return world.get_pool_status()[NodeConn.IN_WORLD_AGENTS] == expected

        await eventually(all_in_world, 60)
        size = len(world.build_rendezvous_roster().to_json())
        assert size > 15_000, f"a roster of 100 peers should be large, it is {size} bytes"

        async def roster_applied() -> bool:
            assert await world.publish_rendezvous() is not None  # publish raised nothing
            await local.update()
            await local.set_world_agents_and_world_masters_lists_from_rendezvous()
            return local.rendezvous_tag >= 1

        await eventually(roster_applied, 40, every=0.3)
        assert {p for p in expected if local.get_role(p) == AGENT} == expected
    finally:
        await others.stop()
        for n in (wu, ww, cu, cw):
            await n.stop()
