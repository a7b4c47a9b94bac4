"""Our mesh node (peerpool.mesh.MeshNode) in its own process, driven by JSON lines.

The same commands and events as pylibp2p_peer.py (see pylibp2p_host.py's docstring),
so that the benches and the namespace tests drive either with one harness, plus:
``reserve {relay_addr}`` -> ``{expiry}`` and ``peers`` -> full PeerInfo records.

    python mesh_peer.py [--key FILE] [--hosts N] [--listen MADDR] [--relay-server]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import struct
import sys
import time
import traceback
from dataclasses import asdict
from typing import Any

from peerpool.errors import MeshClosedError
from peerpool.mesh import (
    DirectMessage,
    Identity,
    MeshNode,
    MessagesDropped,
    PeerConnected,
    PeerDisconnected,
    TopicMessage,
)


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class NodeHost:
    def __init__(self, node: MeshNode) -> None:
        self.node = node
        self.mode = "each"
        self.dm_count = self.topic_count = self.out_of_order = 0
        self.t_last_dm = self.t_last_topic = 0.0
        self.last_seq: dict[str, int] = {}
        self.next_seq: dict[str, int] = {}
        self.latencies_us: list[int] = []
        self.dropped: dict[str, int] = {}
        self.changed = asyncio.Event()

    def describe(self) -> dict[str, Any]:
        return {"peer_id": self.node.peer_id, "addrs": self.node.listen_addrs}

    async def pump(self) -> None:
        # batches straight from next_events (not the per-event async iterator): the
        # receiving side's own bookkeeping should not be what the DM benchmark measures
        with contextlib.suppress(MeshClosedError):
            while True:
                batch = await self.node.next_events(8192)
                dm_before = self.dm_count
                for ev in batch:
                    self._on_event(ev)
                if self.dm_count != dm_before:  # once per batch: the batch arrived together
                    self.t_last_dm = time.monotonic()
                self.changed.set()
                self.changed = asyncio.Event()

    def _on_event(self, ev: Any) -> None:
        if isinstance(ev, DirectMessage):
            self.dm_count += 1
            if self.mode == "count":
                if len(ev.payload) >= 8:
                    (seq,) = struct.unpack_from(">Q", ev.payload)
                    if seq != self.last_seq.get(ev.peer_id, -1) + 1:
                        self.out_of_order += 1
                    self.last_seq[ev.peer_id] = seq
            else:
                emit(
                    {
                        "event": "dm",
                        "peer_id": ev.peer_id,
                        "channel": ev.channel,
                        "payload": b64(ev.payload),
                    }
                )
        elif isinstance(ev, TopicMessage):
            now = time.time_ns()
            self.topic_count += 1
            self.t_last_topic = time.monotonic()
            if self.mode == "count":
                if len(ev.data) >= 8:
                    (sent,) = struct.unpack_from(">Q", ev.data)
                    self.latencies_us.append((now - sent) // 1000)
            else:
                emit(
                    {
                        "event": "topic",
                        "topic": ev.topic,
                        "source": ev.source,
                        "via": ev.via,
                        "data": b64(ev.data),
                    }
                )
        elif isinstance(ev, PeerConnected):
            emit({"event": "connected", **_info(ev.info)})
        elif isinstance(ev, PeerDisconnected):
            emit({"event": "disconnected", "peer_id": ev.peer_id, "cause": ev.cause})
        elif isinstance(ev, MessagesDropped):
            self.dropped[ev.reason] = self.dropped.get(ev.reason, 0) + ev.count
            emit(
                {"event": "dropped", "reason": ev.reason, "peer_id": ev.peer_id, "count": ev.count}
            )

    async def handle(self, c: dict[str, Any]) -> dict[str, Any] | None:
        op, node = c["cmd"], self.node
        if op == "dial":
            info = await node.dial(c["addr"], timeout=float(c.get("within", 10)))
            return {"peer_id": info.peer_id, "info": _info(info)}
        if op == "peers":
            return {
                "peers": [p.peer_id for p in node.peers()],
                "infos": [_info(p) for p in node.peers()],
            }
        if op == "disconnect":
            await node.disconnect(c["peer_id"])
            return None
        if op == "reserve":
            return {
                "expiry": await node.reserve(c["relay_addr"], timeout=float(c.get("within", 10)))
            }
        if op == "send":
            await node.send(c["peer_id"], c["channel"], base64.b64decode(c["payload"]))
            return None
        if op == "send_many":
            filler = b"\xab" * (int(c["size"]) - 8)
            peer, channel = c["peer_id"], c["channel"]
            first = self.next_seq.get(peer, 0)
            batch = int(c.get("batch", 1))  # > 1: MeshNode.send_many, one call per batch
            t0 = time.monotonic()
            if batch > 1:
                end = first + int(c["count"])
                for start in range(first, end, batch):
                    payloads = [
                        struct.pack(">Q", seq) + filler
                        for seq in range(start, min(end, start + batch))
                    ]
                    await node.send_many(peer, channel, payloads)
            else:
                for seq in range(first, first + int(c["count"])):
                    await node.send(peer, channel, struct.pack(">Q", seq) + filler)
            self.next_seq[peer] = first + int(c["count"])
            return {"t_start": t0, "t_end": time.monotonic()}
        if op == "subscribe":
            await node.subscribe(c["topic"])
            return None
        if op == "unsubscribe":
            await node.unsubscribe(c["topic"])
            return None
        if op == "publish":
            await node.publish(c["topic"], base64.b64decode(c["data"]))
            return None
        if op == "publish_many":
            filler = b"\xcd" * (int(c["size"]) - 8)
            interval = float(c.get("interval", 0))
            t0 = time.monotonic()
            for _ in range(int(c["count"])):
                await node.publish(c["topic"], struct.pack(">Q", time.time_ns()) + filler)
                if interval:
                    await asyncio.sleep(interval)
            return {"t_start": t0, "t_end": time.monotonic()}
        if op == "topic_peers":
            topic_peers = getattr(node, "topic_peers", None)  # not in the contract (yet)
            if topic_peers is None:
                raise RuntimeError("MeshNode has no topic_peers()")
            return {"peers": sorted(topic_peers(c["topic"]))}
        if op == "report":
            self.mode = c["mode"]
            return None
        if op == "reset":
            self.dm_count = self.topic_count = self.out_of_order = 0
            self.latencies_us = []
            return None
        if op in ("counts", "wait_counts"):
            if op == "wait_counts":
                deadline = time.monotonic() + float(c.get("within", 30))
                while self.dm_count < int(c.get("dm", 0)) or self.topic_count < int(
                    c.get("topic", 0)
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    ev = self.changed
                    try:
                        await asyncio.wait_for(ev.wait(), left)
                    except asyncio.TimeoutError:
                        break
            return {
                "dm": self.dm_count,
                "topic": self.topic_count,
                "t_last_dm": self.t_last_dm,
                "t_last_topic": self.t_last_topic,
                "out_of_order": self.out_of_order,
                "latencies_us": self.latencies_us if op == "wait_counts" else [],
                "dropped": self.dropped,
                "stats": dict(node.stats),
            }
        raise ValueError(f"unknown command {op!r}")


def _info(p: Any) -> dict[str, Any]:
    d = asdict(p)
    d["addrs"] = list(d["addrs"])
    return d


async def _run_command(hosts: list[NodeHost], cmd: dict[str, Any]) -> None:
    try:
        result = await hosts[int(cmd.get("host", 0))].handle(cmd)
        emit({"reply": cmd.get("id"), "ok": True, **(result or {})})
    except Exception as exc:  # reported to the driver, never a dead process
        emit(
            {
                "reply": cmd.get("id"),
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(limit=3),
            }
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", help="key file (Identity.load) for the first node")
    ap.add_argument("--hosts", type=int, default=1)
    ap.add_argument("--listen", action="append", help="multiaddr (repeatable)")
    ap.add_argument("--pubsub", choices=["gossipsub", "floodsub", "none"], default="gossipsub")
    ap.add_argument("--relay-server", action="store_true")
    args = ap.parse_args()
    listen = tuple(args.listen or ["/ip4/127.0.0.1/tcp/0"])
    hosts: list[NodeHost] = []
    for i in range(args.hosts):
        ident = Identity.load(args.key) if (i == 0 and args.key) else Identity.generate()
        node = MeshNode(ident, listen=listen, pubsub=args.pubsub, relay_server=args.relay_server)
        await node.start()
        hosts.append(NodeHost(node))
    pumps = [asyncio.create_task(h.pump()) for h in hosts]
    emit({"event": "ready", "hosts": [h.describe() for h in hosts]})
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "stop":
            emit({"reply": cmd.get("id"), "ok": True})
            break
        task = asyncio.create_task(_run_command(hosts, cmd))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for t in (*tasks, *pumps):
        t.cancel()
    await asyncio.gather(*(h.node.stop() for h in hosts), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
