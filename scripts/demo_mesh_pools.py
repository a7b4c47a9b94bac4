"""`make demo`, pools part: a world node and three agents on 127.0.0.1.

Each participant is a NodeConn over two mesh nodes (public: gossipsub, world:
floodsub). The world approves the agents, they join, the world publishes the
rendezvous roster, the teacher finds the students by role and messages them
directly, they answer, and the world publishes on its news topic. Tokens are
RS256 JWTs signed by a key made here (the world's authority). Pools and roles
are printed at the end.
"""

from __future__ import annotations

import asyncio
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from peerpool.mesh import MeshNode
from peerpool.mesh.nodeconn import NodeConn

AGENT, TEACHER, STUDENT = 1, 1 | 4, 1 | 8
DEADLINE = 30.0


def authority() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem


def token(key: rsa.RSAPrivateKey, name: str, *peers: str) -> str:
    claims = {
        "node_id": name,
        "cv_hash": f"cv-{name}",
        "p2p_peers": list(peers),
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, key, algorithm="RS256")


async def participant(name: str, key: rsa.RSAPrivateKey, pem: bytes, world: bool) -> NodeConn:
    pu, pw = MeshNode(pubsub="gossipsub"), MeshNode(pubsub="floodsub")
    await pu.start()
    await pw.start()
    conn = NodeConn(
        40 if world else 20, pu, pw, world, pem, token(key, name, pw.peer_id, pu.peer_id)
    )
    conn.name = name  # type: ignore[attr-defined]
    return conn


async def until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def main() -> None:
    key, pem = authority()
    world = await participant("world", key, pem, True)
    agents = [await participant(n, key, pem, False) for n in ("alice", "bob", "carol")]
    roles = [TEACHER, STUDENT, STUDENT]
    everyone = [world, *agents]
    ww = world.p2p_world
    try:
        for a, role in zip(agents, roles, strict=True):
            world.add_to_world_agents_list(a.p2p_world.peer_id, a.p2p_world.listen_addrs, role)
            a.set_world(ww.peer_id)
            await a.connect(ww.listen_addrs, NodeConn.P2P_WORLD)
            await a.connect(world.p2p_public.listen_addrs, NodeConn.P2P_PUBLIC)

        async def joined() -> bool:
            for c in everyone:
                await c.update()
            return world.size(NodeConn.WORLD_AGENTS) == 3

        await until(joined, "the agents to join")

        async def roster() -> bool:
            await world.publish_rendezvous()
            for a in agents:
                await a.update()
                await a.set_world_agents_and_world_masters_lists_from_rendezvous()
            return all(a.rendezvous_tag >= 1 for a in agents)

        await until(roster, "the rendezvous roster")
        print(
            f"roster applied by every agent (update_count {min(a.rendezvous_tag for a in agents)})"
        )

        teacher = agents[0]
        addrs, students = teacher.find_addrs_by_role(
            STUDENT, return_peer_ids_too=True, discard_yourself=True
        )
        for peer_addrs in addrs:
            await teacher.connect(peer_addrs, NodeConn.P2P_WORLD)
        await until(lambda: _all_in_pool(teacher, students), "the teacher's connections")
        for s in students:
            await teacher.send(s, "lesson", "misc", {"lesson": 1, "to": s[-8:]})
        for a in agents:
            await a.send(ww.peer_id, "hello", "profile", {"name": a.name})  # type: ignore[attr-defined]
        topic = f"{ww.peer_id}::ps:news"
        for a in agents:
            await a.subscribe(ww.peer_id, topic)

        inbox: dict[str, list] = {c.name: [] for c in everyone}  # type: ignore[attr-defined]

        async def exchanged() -> bool:
            await world.publish(ww.peer_id, topic, "misc", {"news": "the world is up"})
            for c in everyone:
                await c.update()
                for m in await c.get_messages(NodeConn.P2P_WORLD):
                    inbox[c.name].append(m)  # type: ignore[attr-defined]
                    if m.channel.endswith("~lesson"):
                        await c.send(m.sender, "reply", "misc", {"thanks": c.name})  # type: ignore[attr-defined]
            got_news = all(any(m.channel == topic for m in inbox[a.name]) for a in agents)  # type: ignore[attr-defined]
            replies = [m for m in inbox["alice"] if m.channel.endswith("~reply")]
            return got_news and len(replies) == 2 and len(inbox["world"]) == 3

        await until(exchanged, "the direct messages and the topic")
        for c in everyone:
            name = c.name  # type: ignore[attr-defined]
            kinds = sorted(
                {
                    "topic" if m.channel == topic else m.channel.rsplit("~", 1)[-1]
                    for m in inbox[name]
                }
            )
            print(
                f"{name}: {len(inbox[name])} messages accepted ({', '.join(kinds)}), rejected {dict(c.rejections)}"
            )
        print()
        label = {}
        for c in everyone:
            label[c.p2p_world.peer_id] = f"{c.name}/world"  # type: ignore[attr-defined]
            label[c.p2p_public.peer_id] = f"{c.name}/public"  # type: ignore[attr-defined]
        for c in everyone:
            print(f"== {c.name}")  # type: ignore[attr-defined]
            for pool, peers in c.get_pool_status().items():
                if peers:
                    print(f"   {pool:28} {', '.join(sorted(label[p] for p in peers))}")
            roles_seen = {label[p]: c.get_role(p) for p in sorted(c.peer_id_to_misc)}
            print(f"   roles (1 world agent, |4 teacher, |8 student): {roles_seen}")
    finally:
        for c in everyone:
            await c.p2p_public.stop()
            await c.p2p_world.stop()


async def _all_in_pool(conn: NodeConn, peers: list[str]) -> bool:
    await conn.update()
    return all(conn.get_pool_of(p) in NodeConn.WORLD_AGENTS for p in peers)


if __name__ == "__main__":
    asyncio.run(main())
