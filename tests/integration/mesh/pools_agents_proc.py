"""Agents with NodeConn pools in a child process, driven by JSON lines (integration tests, demo).

``python -m tests.integration.mesh.pools_agents_proc '<config>'`` with config
``{"agents": [{"public_key": path, "world_key": path, "token": str}, ...],
"public_key_pem": str, "world": {"peer_id": str, "world_addrs": [...]}}``
starts each agent's two mesh nodes (public: gossipsub, world: floodsub),
joins the world (set_world, dial the world node) and prints one line
``{"ready": [{"public_id", "world_id", "public_addrs", "world_addrs"}]}``.
Every 50 ms each agent runs its cycle: ``update()``, the rendezvous roster,
``get_messages`` on both networks. Commands (one JSON object a line, answered
``{"id", "ok"}`` or ``{"id", "error", "message"}``): ``status``, ``send``,
``publish``, ``subscribe``, ``connect``, ``stop``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from peerpool.errors import PeerpoolError
from peerpool.mesh import Identity, MeshNode
from peerpool.mesh.nodeconn import NodeConn

CYCLE = 0.05


class Agent:
    def __init__(self, spec: dict[str, Any], pem: str) -> None:
        self.pu = MeshNode(Identity.load(spec["public_key"]), pubsub="gossipsub")
        self.pw = MeshNode(Identity.load(spec["world_key"]), pubsub="floodsub")
        self.conn = NodeConn(20, self.pu, self.pw, False, pem, spec["token"])
        self.received: list[dict[str, Any]] = []

    async def start(self, world: dict[str, Any]) -> None:
        await self.pu.start()
        await self.pw.start()
        self.conn.set_world(world["peer_id"])
        peer, _ = await self.conn.connect(world["world_addrs"], NodeConn.P2P_WORLD)
        if peer != world["peer_id"]:
            raise RuntimeError(f"could not reach the world node ({peer})")

    async def cycle(self) -> None:
        await self.conn.update()
        await self.conn.set_world_agents_and_world_masters_lists_from_rendezvous()
        for net in (NodeConn.P2P_WORLD, NodeConn.P2P_PUBLIC):
            for msg in await self.conn.get_messages(net):
                self.received.append(
                    {
                        "net": net,
                        "sender": msg.sender,
                        "content_type": msg.content_type,
                        "channel": msg.channel,
                        "content": msg.content,
                        "piggyback": msg.piggyback,
                    }
                )

    def status(self) -> dict[str, Any]:
        c = self.conn
        return {
            "world_id": self.pw.peer_id,
            "public_id": self.pu.peer_id,
            "pools": {k: sorted(v) for k, v in c.get_pool_status().items()},
            "roles": {p: c.get_role(p) for p in sorted(c.peer_id_to_misc)},
            "world_agents": sorted(c.world_agents_list),
            "world_masters": sorted(c.world_masters_list),
            "rendezvous_tag": c.rendezvous_tag,
            "received": self.received,
            "rejections": dict(c.rejections),
            "stats": dict(c.stats),
        }

    async def stop(self) -> None:
        await self.pu.stop()
        await self.pw.stop()


async def handle(agents: list[Agent], cmd: dict[str, Any]) -> Any:
    op = cmd["op"]
    if op == "status":
        return [a.status() for a in agents]
    a = agents[cmd.get("agent", 0)]
    if op == "send":
        return await a.conn.send(
            cmd["to"], cmd.get("trail"), cmd["content_type"], cmd.get("content")
        )
    if op == "publish":
        return await a.conn.publish(
            cmd["owner"], cmd["topic"], cmd["content_type"], cmd.get("content")
        )
    if op == "subscribe":
        return await a.conn.subscribe(cmd["owner"], cmd["topic"])
    if op == "connect":
        return list(await a.conn.connect(cmd["addrs"], cmd.get("net", NodeConn.P2P_WORLD)))
    raise ValueError(f"unknown op {op!r}")


async def main(config: dict[str, Any]) -> None:
    agents = [Agent(spec, config["public_key_pem"]) for spec in config["agents"]]
    for a in agents:
        await a.start(config["world"])
    out = sys.stdout
    ready = [
        {
            "public_id": a.pu.peer_id,
            "world_id": a.pw.peer_id,
            "public_addrs": a.pu.listen_addrs,
            "world_addrs": a.pw.listen_addrs,
        }
        for a in agents
    ]
    out.write(json.dumps({"ready": ready}) + "\n")
    out.flush()

    async def cycles() -> None:
        while True:
            for a in agents:
                await a.cycle()
            await asyncio.sleep(CYCLE)

    ticker = asyncio.ensure_future(cycles())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd.get("op") == "stop":
            break
        try:
            reply: dict[str, Any] = {"id": cmd.get("id"), "ok": await handle(agents, cmd)}
        except PeerpoolError as exc:
            reply = {"id": cmd.get("id"), "error": type(exc).__name__, "message": str(exc)}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    ticker.cancel()
    for a in agents:
        await a.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
