"""Mesh nodes in a child process, driven by JSON lines (tests, demo, benchmarks).

``python -m peerpool.mesh.proc '{"nodes": 3, "pubsub": "floodsub"}'`` starts
the nodes (the JSON holds MeshNode keyword arguments plus ``nodes``), prints
one line ``{"ready": [{"peer_id", "addrs"}, ...]}``, then answers each command
line ``{"id": .., "op": .., "node": i, ...}`` with ``{"id": .., "ok": ...}`` or
``{"id": .., "error": "<class>", "message": ..}``. Bytes travel as base64.
Each node collects its events; ``events`` hands them over (and can wait for a
number of them). Request protocols are served by an echo handler that fails on
the payload ``fail``. The process exits when stdin closes or on ``stop``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from typing import Any

from peerpool.errors import PeerpoolError

from .events import (
    DirectMessage,
    MeshEvent,
    MessagesDropped,
    PeerConnected,
    PeerDisconnected,
    PeerInfo,
    TopicMessage,
)
from .node import MeshNode


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def info_dict(info: PeerInfo) -> dict[str, Any]:
    return {
        "peer_id": info.peer_id,
        "addrs": list(info.addrs),
        "direction": info.direction,
        "relayed": info.relayed,
        "connected_since": info.connected_since,
    }


def event_dict(ev: MeshEvent) -> dict[str, Any]:
    if isinstance(ev, DirectMessage):
        return {
            "kind": "direct",
            "peer_id": ev.peer_id,
            "channel": ev.channel,
            "payload": _b64(ev.payload),
        }
    if isinstance(ev, TopicMessage):
        return {
            "kind": "topic",
            "topic": ev.topic,
            "source": ev.source,
            "via": ev.via,
            "data": _b64(ev.data),
        }
    if isinstance(ev, PeerConnected):
        return {"kind": "connected", "info": info_dict(ev.info)}
    if isinstance(ev, PeerDisconnected):
        return {"kind": "disconnected", "peer_id": ev.peer_id, "cause": ev.cause}
    if isinstance(ev, MessagesDropped):
        return {"kind": "dropped", "reason": ev.reason, "peer_id": ev.peer_id, "count": ev.count}
    raise AssertionError(ev)


def numbered(k: int, size: int) -> bytes:
    """Payload k of a numbered run: the receiver checks that each arrived once."""
    return str(k).encode().ljust(size, b".")


class Hosted:
    """One node and the events it collected."""

    def __init__(self, node: MeshNode) -> None:
        self.node = node
        self.events: list[MeshEvent] = []
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def collect(self) -> None:
        async for ev in self.node.events():
            self.events.append(ev)
            self.changed.set()

    def count(self, kind: str) -> int:
        kinds = {
            "direct": DirectMessage,
            "topic": TopicMessage,
            "connected": PeerConnected,
            "disconnected": PeerDisconnected,
            "dropped": MessagesDropped,
        }
        return sum(1 for e in self.events if isinstance(e, kinds[kind]))

    async def wait(self, kind: str, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count(kind) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                return


async def echo(peer: str, payload: bytes) -> bytes:
    if payload == b"fail":
        raise RuntimeError("asked to fail")
    return b"echo:" + payload


async def handle(hosts: list[Hosted], cmd: dict[str, Any]) -> Any:
    op = cmd["op"]
    h = hosts[cmd.get("node", 0)]
    node = h.node
    if op == "dial":
        return info_dict(await node.dial(cmd["addrs"], timeout=cmd.get("timeout", 10.0)))
    if op == "send":
        await node.send(cmd["peer"], cmd["channel"], _unb64(cmd["payload"]))
        return None
    if op == "send_many":
        batch = int(cmd.get("batch", 1))  # > 1: MeshNode.send_many of that many at a time
        for start in range(0, cmd["count"], batch):
            ks = range(start, min(cmd["count"], start + batch))
            if batch > 1:
                await node.send_many(
                    cmd["peer"], cmd["channel"], [numbered(k, cmd["size"]) for k in ks]
                )
            else:
                await node.send(cmd["peer"], cmd["channel"], numbered(start, cmd["size"]))
        return None
    if op == "send_raw":
        await node._send_raw(cmd["peer"], _unb64(cmd["data"]))
        return None
    if op == "disconnect":
        await node.disconnect(cmd["peer"])
        return None
    if op in ("subscribe", "unsubscribe"):
        await getattr(node, op)(cmd["topic"])
        return None
    if op == "publish":
        await node.publish(cmd["topic"], _unb64(cmd["data"]))
        return None
    if op == "publish_many":
        for k in range(cmd["count"]):
            await node.publish(cmd["topic"], numbered(k, cmd["size"]))
        return None
    if op == "request":
        reply = await node.request(
            cmd["peer"], cmd["protocol"], _unb64(cmd["payload"]), timeout=cmd.get("timeout", 5.0)
        )
        return _b64(reply)
    if op == "reserve":
        return await node.reserve(cmd["relay"], timeout=cmd.get("timeout", 10.0))
    if op == "events":
        if "wait_kind" in cmd:
            await h.wait(cmd["wait_kind"], cmd["wait_count"], cmd.get("timeout", 10.0))
        taken, h.events = h.events, []
        if cmd.get("summary"):
            counts: dict[str, int] = {}
            for e in taken:
                k = event_dict(e)["kind"]
                counts[k] = counts.get(k, 0) + 1
            return {
                "counts": counts,
                "events": [
                    event_dict(e) for e in taken if not isinstance(e, (DirectMessage, TopicMessage))
                ],
                "payloads": [
                    _b64(e.payload if isinstance(e, DirectMessage) else e.data)
                    for e in taken
                    if isinstance(e, (DirectMessage, TopicMessage))
                ],
            }
        return [event_dict(e) for e in taken]
    if op == "peers":
        return [info_dict(p) for p in node.peers()]
    if op == "stats":
        return node.stats
    if op == "addrs":
        return node.listen_addrs
    raise ValueError(f"unknown op {op!r}")


async def main(config: dict[str, Any]) -> None:
    count = int(config.pop("nodes", 1))
    hosts = [Hosted(MeshNode(**config)) for _ in range(count)]
    for h in hosts:
        await h.node.start()
        h.task = asyncio.ensure_future(h.collect())
        for p in config.get("request_protocols", ()):
            h.node.set_request_handler(p, echo)
    out = sys.stdout
    ready = [{"peer_id": h.node.peer_id, "addrs": h.node.listen_addrs} for h in hosts]
    out.write(json.dumps({"ready": ready}) + "\n")
    out.flush()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    running: set[asyncio.Task[None]] = set()

    async def run(cmd: dict[str, Any]) -> None:
        try:
            reply: dict[str, Any] = {"id": cmd.get("id"), "ok": await handle(hosts, cmd)}
        except PeerpoolError as exc:
            reply = {"id": cmd.get("id"), "error": type(exc).__name__, "message": str(exc)}
        out.write(json.dumps(reply) + "\n")
        out.flush()

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd.get("op") == "stop":
            break
        # commands run concurrently: a waiting "events" must not hold up a "send"
        t = asyncio.ensure_future(run(cmd))
        running.add(t)
        t.add_done_callback(running.discard)
    for h in hosts:
        await h.node.stop()
        if h.task is not None:
            await h.task


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
