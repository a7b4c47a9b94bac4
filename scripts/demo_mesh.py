"""`make demo`, mesh part: three libp2p nodes on 127.0.0.1, each in its own
process (``python -m peerpool.mesh.proc``) plus one here, exchange direct
messages on /unaiverse/chat/1.0.0 and a gossipsub topic, and print what each got.

Exits non-zero if a message is missing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any

from peerpool.mesh import DirectMessage, MeshNode, TopicMessage


class Child:
    """A node in a child process, driven by JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.proc, self.peer_id, self.addrs = proc, ready["peer_id"], ready["addrs"]
        self._n = 0

    @classmethod
    async def start(cls) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "peerpool.mesh.proc",
            "{}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        ready = json.loads(await proc.stdout.readline())["ready"][0]
        return cls(proc, ready)

    async def call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._n += 1
        self.proc.stdin.write((json.dumps({"id": self._n, "op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        msg = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))
        if "error" in msg:
            raise RuntimeError(f"{op}: {msg['error']}: {msg['message']}")
        return msg["ok"]

    async def knows(self, peer_id: str) -> None:
        """Until this node has `peer_id` among its peers (the dialed side
        learns of a connection a moment after the dialer)."""
        for _ in range(500):
            if any(p["peer_id"] == peer_id for p in await self.call("peers")):
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{peer_id} never connected")

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"op": "stop"}\n')
        await self.proc.stdin.drain()
        self.proc.stdin.close()
        await self.proc.wait()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def main() -> int:
    alice = MeshNode()
    await alice.start()
    bob, carol = await Child.start(), await Child.start()
    names = {alice.peer_id: "alice", bob.peer_id: "bob", carol.peer_id: "carol"}
    print(f"alice {alice.peer_id} on {alice.listen_addrs[0]}")
    print(f"bob   {bob.peer_id} on {bob.addrs[0]}")
    print(f"carol {carol.peer_id} on {carol.addrs[0]}")
    topic = f"{alice.peer_id}::ps:demo"
    for child in (bob, carol):
        await child.call("subscribe", topic=topic)
    await alice.subscribe(topic)
    await alice.dial(bob.addrs)
    await alice.dial(carol.addrs)
    await bob.call("dial", addrs=carol.addrs)

    await bob.knows(alice.peer_id)
    await carol.knows(bob.peer_id)
    await alice.send(bob.peer_id, f"{alice.peer_id}::dm:{bob.peer_id}-misc", b"hi bob, alice here")
    await alice.send(carol.peer_id, f"{alice.peer_id}::dm:{carol.peer_id}-misc", b"hi carol")
    await bob.call(
        "send",
        peer=alice.peer_id,
        channel=f"{bob.peer_id}::dm:{alice.peer_id}-misc",
        payload=b64(b"hello alice, from bob"),
    )
    await carol.call(
        "send",
        peer=bob.peer_id,
        channel=f"{carol.peer_id}::dm:{bob.peer_id}-misc",
        payload=b64(b"bob, carol says hi"),
    )
    # gossipsub needs the subscriptions to have reached us before a publish counts
    await asyncio.sleep(1.5)
    await alice.publish(topic, b"news from alice to everyone")

    ok = True
    got: list[str] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while len(got) < 1 and loop.time() < end:
        for ev in await alice.next_events(timeout=1):
            if isinstance(ev, DirectMessage):
                got.append(
                    f"direct from {names.get(ev.peer_id, ev.peer_id)}: {ev.payload.decode()}"
                )
            elif isinstance(ev, TopicMessage):
                got.append(f"topic {ev.topic}: {ev.data.decode()}")
    print("alice got:", *got, sep="\n  ")
    ok &= any("from bob" in g for g in got)
    for name, child, want_direct in (("bob", bob, 2), ("carol", carol, 1)):
        events = await child.call("events", wait_kind="direct", wait_count=want_direct, timeout=10)
        events += await child.call("events", wait_kind="topic", wait_count=1, timeout=10)
        lines = []
        for e in events:
            if e["kind"] == "direct":
                text = base64.b64decode(e["payload"]).decode()
                lines.append(f"direct from {names.get(e['peer_id'], e['peer_id'])}: {text}")
            elif e["kind"] == "topic":
                lines.append(f"topic {e['topic']}: {base64.b64decode(e['data']).decode()}")
        print(f"{name} got:", *lines, sep="\n  ")
        ok &= sum(line.startswith("direct") for line in lines) == want_direct
        ok &= any(line.startswith("topic") for line in lines)
    for child in (bob, carol):
        await child.stop()
    await alice.stop()
    print("mesh demo:", "every message arrived" if ok else "MISSING MESSAGES")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
